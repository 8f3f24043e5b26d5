"""The registry: job kinds and schedules by name."""

from __future__ import annotations

from typing import Any

import pytest

from kurz.jobs.registry import DEFAULT_TIMEOUT, Registry
from kurz.jobs.schedule import Cron, Every


async def noop(payload: dict[str, Any]) -> None:
    return None


def test_the_decorator_registers_the_handler_and_returns_it() -> None:
    registry = Registry()

    @registry.job("purge", timeout=60.0, max_attempts=3)
    async def purge(payload: dict[str, Any]) -> None:
        return None

    kind = registry.kinds["purge"]
    assert (kind.name, kind.handler, kind.timeout, kind.max_attempts) == ("purge", purge, 60.0, 3)
    registry.add("other", noop)
    assert registry.kinds["other"].timeout == DEFAULT_TIMEOUT
    assert registry.kinds["other"].max_attempts is None


def test_a_kind_or_schedule_is_registered_once() -> None:
    registry = Registry()
    registry.add("k", noop)
    registry.every("s", 60, "k")
    with pytest.raises(ValueError, match="'k' is already registered"):
        registry.add("k", noop)
    with pytest.raises(ValueError, match="'s' is already registered"):
        registry.cron("s", "* * * * *", "k")


def test_schedules_keep_their_kind_payload_and_queue() -> None:
    registry = Registry()
    payload = {"batch": 100}
    registry.every("rollup", 300, "rollup-clicks", payload, queue="analytics")
    registry.cron("purge", "*/15 * * * *", "purge-keys")
    payload["batch"] = 1
    rollup, purge = registry.schedules["rollup"], registry.schedules["purge"]
    assert (rollup.schedule, rollup.kind, rollup.payload, rollup.queue) == (
        Every(300),
        "rollup-clicks",
        {"batch": 100},
        "analytics",
    )
    assert (purge.schedule, purge.payload, purge.queue) == (Cron("*/15 * * * *"), {}, "default")


@pytest.mark.parametrize(
    ("options", "message"),
    [({"timeout": 0}, "timeout"), ({"max_attempts": 0}, "max_attempts")],
)
def test_nonsense_limits_are_refused(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Registry().add("k", noop, **options)


def test_registries_combine_and_refuse_a_clash_whole() -> None:
    main, part = Registry(), Registry()
    part.add("a", noop, timeout=5.0)
    part.every("tick", 1, "a")
    main.include(part)
    assert main.kinds["a"].timeout == 5.0
    assert "tick" in main.schedules
    clashing = Registry()
    clashing.add("b", noop)
    clashing.add("a", noop)
    with pytest.raises(ValueError, match="already registered: a"):
        main.include(clashing)
    assert "b" not in main.kinds


def test_the_views_are_read_only() -> None:
    registry = Registry()
    registry.add("k", noop)
    with pytest.raises(TypeError):
        registry.kinds["k"] = registry.kinds["k"]  # type: ignore[index]
