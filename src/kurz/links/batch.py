"""Many links in one request (POST /api/v1/links/batch, gRPC BatchCreateLinks): each
item read, made and answered as a single create would, the whole written in chunks of
one transaction each (docs/batch.md).

`Batches` is the use case; the rest is what it and the APIs share: how an item is
read, what an answer looks like, and the problem of the links a failed chunk left
unwritten.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncConnection

from kurz.auth.models import Principal
from kurz.clock import utcnow
from kurz.errors import Problem, invalid, validation_problem
from kurz.idempotency import IN_FLIGHT, Keyed, Recorded, Steps, fingerprint
from kurz.links import domains, queries
from kurz.links.codes import cache_key
from kurz.links.models import LinkCreate, LinkRead
from kurz.links.service import NO_DOMAIN, Links, asked_for, caller_of

log = logging.getLogger("kurz")

# The operation a batch's Idempotency-Key is kept for: never a single create's.
CREATE_MANY = "create-links"

# Links written per transaction. A chunk holds SQLite's one write lock while it
# writes, so other writers (a click batch, a single create) wait at most one chunk;
# larger chunks gain little once a chunk's own statements outweigh a commit's
# (docs/batch.md has the figures).
CHUNK = 100


def parsed(item: Any) -> LinkCreate | Problem:
    """One item of a batch as POST /api/v1/links reads a body: the link asked for, or
    the 422 it would answer (the fields named as in that body)."""
    try:
        # As FastAPI validates a body (attributes too), so that the messages are alike.
        return LinkCreate.model_validate(item, from_attributes=True)
    except ValidationError as exc:
        return validation_problem([{**e, "loc": ("body", *e["loc"])} for e in exc.errors()])


def entry(result: LinkRead | Problem) -> str:
    """One result's JSON: the link as POST /api/v1/links renders it, or the problem."""
    if isinstance(result, Problem):
        return json.dumps(result.body(), separators=(",", ":"), ensure_ascii=False)
    return result.model_dump_json()


def answer(entries: Sequence[str]) -> str:
    """The whole answer's JSON (kurz.links.models.LinkBatchResults), from its entries."""
    return f'{{"results":[{",".join(entries)}]}}'


# Why a chunk was not written, by the problem type its links then answer.
_WHY = {
    "database-unavailable": "the database did not answer",
    "database-busy": "every database connection stayed busy",
    "internal-error": "an unexpected error occurred",
}


def interrupted(cause: BaseException, start: int, end: int) -> Problem:
    """The problem of each link from links[start] on, once the transaction of
    links[start] to links[end - 1] failed: the database's 503 when it did not answer,
    else a 500, each saying that the batch stopped there."""
    if isinstance(cause, Problem) and cause.slug in _WHY:
        status, slug, title = cause.status, cause.slug, cause.title
    else:
        status, slug, title = 500, "internal-error", "Internal Server Error"
    return Problem(
        status,
        slug,
        title,
        f"Not written: the batch stopped at links[{start}], as writing links[{start}] to "
        f"links[{end - 1}] failed ({_WHY[slug]}); the links before it were written. Send the "
        "same batch again with the same Idempotency-Key to write the rest (without one, "
        "the links written so far would be made again).",
    )


@dataclass(frozen=True, slots=True)
class BatchAnswer:
    """A batch's answer: its JSON (kurz.links.models.LinkBatchResults), one result per
    link asked for, in order; `replayed`: the answer an Idempotency-Key's record kept,
    sent again."""

    text: str
    replayed: bool = False

    def results(self) -> Iterator[LinkRead | Problem]:
        """Each result read back: a link, or a Problem (for an API that renders them
        otherwise)."""
        for found in json.loads(self.text)["results"]:
            if "type" not in found:
                yield LinkRead.model_validate(found)
                continue
            yield Problem(
                found.pop("status"),
                str(found.pop("type")).removeprefix("/problems/"),
                found.pop("title"),
                found.pop("detail"),
                errors=found.pop("errors", None),
                extensions=found,
            )


def create_many_key(
    principal: Principal, links: Sequence[LinkCreate | Problem], key: str, *, default_host: str
) -> Keyed:
    """`key` bound to the links asked for, in order (an item refused as read, by its
    problem)."""
    asked = [
        {"refused": link.body()}
        if isinstance(link, Problem)
        else asked_for(link, default_host=default_host)
        for link in links
    ]
    return Keyed(caller_of(principal), CREATE_MANY, key, fingerprint(asked))


def password_of(link: LinkCreate | Problem) -> str | None:
    return None if isinstance(link, Problem) else link.password


class Batches:
    """The batch use case, over the single create's parts (`links`, read when a batch
    runs)."""

    def __init__(self, links: Links) -> None:
        self.links = links
        self.steps = Steps(links.idempotency)
        # Links written per transaction (CHUNK; a bench tries others).
        self.chunk = CHUNK

    async def create_many(
        self, *, principal: Principal, links: Sequence[LinkCreate | Problem], key: str | None
    ) -> BatchAnswer:
        """New links, each made or refused as `Links.create` would, in chunks of one
        transaction each; an item refused as read (its Problem) stays refused. With
        `key`, the answer the first request with the key gave, or, if it stopped part
        way, that answer completed: no link is made twice."""
        default_host = self.links.default_host
        keyed = (
            None
            if key is None
            else create_many_key(principal, links, key, default_host=default_host)
        )
        run = await self.steps.begin(keyed)
        if isinstance(run, Recorded):
            return BatchAnswer(run.text, replayed=True)
        for start in range(len(run.done), len(links), self.chunk) or [len(links)]:
            end = min(start + self.chunk, len(links))
            chunk = links[start:end]
            # Before the transaction, which should not wait for Argon2.
            hashed = await self._hash_all(chunk)
            written: list[tuple[str, int]] = []
            operation = partial(
                self._write_chunk, principal=principal, chunk=chunk, hashed=hashed, written=written
            )
            try:
                await self.steps.step(run, operation, answer=answer if end == len(links) else None)
            except Exception as exc:
                if isinstance(exc, Problem) and exc.slug == IN_FLIGHT:
                    raise  # another request with the key took it over, and goes on
                if not (isinstance(exc, Problem) and exc.status == 503):
                    log.exception("a chunk of a batch of links failed")
                await self.steps.release(run)
                stopped = entry(interrupted(exc, start, end))
                return BatchAnswer(answer([*run.done, *[stopped] * (len(links) - start)]))
            # A process may remember a code as unknown (a visitor tried it first).
            await self.links.cache.changed_many(written)
        return BatchAnswer(answer(run.done))

    async def _hash_all(self, links: Sequence[LinkCreate | Problem]) -> list[str | None]:
        """Each link's password hashed (None: it has none), the hashes made side by side."""
        hashed: list[str | None] = [None] * len(links)
        asked = {i: password for i, link in enumerate(links) if (password := password_of(link))}
        made = await asyncio.gather(*map(self.links.passwords.ahash, asked.values()))
        for i, password_hash in zip(asked, made, strict=True):
            hashed[i] = password_hash
        return hashed

    async def _write_chunk(
        self,
        conn: AsyncConnection,
        *,
        principal: Principal,
        chunk: Sequence[LinkCreate | Problem],
        hashed: Sequence[str | None],
        written: list[tuple[str, int]],
    ) -> list[str]:
        """One chunk's links, made in the transaction `conn` holds: each one's result
        (`entry`), in its place; `written` gets the cache key and version of each link
        made."""
        links = self.links
        names = [
            None if isinstance(link, Problem) else
            domains.named(link.domain, default_host=links.default_host)
            for link in chunk
        ]  # fmt: skip
        ids = await domains.known(conn, {name for name in names if isinstance(name, str)})
        results: list[LinkRead | Problem | None] = []
        new: list[queries.NewLink] = []
        for link, name, password_hash in zip(chunk, names, hashed, strict=True):
            domain_id = ids.get(name) if isinstance(name, str) else name
            if isinstance(link, Problem):
                results.append(link)
            elif domain_id is None:
                results.append(invalid("domain", NO_DOMAIN))
            else:
                results.append(None)
                new.append(queries.NewLink(link, domain_id, password_hash))
        made = await queries.create_many(
            conn=conn,
            new=new,
            owner=principal,
            now=utcnow(links.clock),
            base_url=links.base_url,
            own=links.own,
        )
        keys = []
        for asked, result in zip(new, made, strict=True):
            if isinstance(result, LinkRead):
                keys.append(cache_key(asked.domain_id, result.code))
                written.append((keys[-1], result.version))
        if keys:
            # In the chunk's transaction, as a single create tells them (kurz.webhooks).
            await links.events.changed(conn, event="link.created", keys=keys)
        filled = iter(made)
        return [entry(next(filled) if result is None else result) for result in results]
