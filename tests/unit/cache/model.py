"""What an LRU cache should hold: the model the cache property tests check against."""

from __future__ import annotations

from hypothesis import strategies as st

# (operation, key, value) steps over a few keys, so that they collide and get evicted.
ops = st.lists(
    st.tuples(st.sampled_from(["get", "put", "discard"]), st.integers(0, 8), st.integers(0, 99)),
    max_size=300,
)


class RecencyModel:
    """Entries in recency order, least recent first, at most `size` of them."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.entries: list[tuple[int, int]] = []

    def _index(self, key: int) -> int | None:
        return next((i for i, (k, _) in enumerate(self.entries) if k == key), None)

    def __contains__(self, key: int) -> bool:
        return self._index(key) is not None

    def __len__(self) -> int:
        return len(self.entries)

    def get(self, key: int) -> int | None:
        found = self._index(key)
        if found is None:
            return None
        entry = self.entries.pop(found)
        self.entries.append(entry)
        return entry[1]

    def put(self, key: int, value: int) -> None:
        self.discard(key)
        self.entries.append((key, value))
        del self.entries[: max(0, len(self.entries) - self.size)]

    def discard(self, key: int) -> None:
        found = self._index(key)
        if found is not None:
            self.entries.pop(found)

    def oldest(self) -> int:
        return self.entries[0][0]
