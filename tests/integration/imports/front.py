"""Sources for the front ends' tests (kurz import, /api/v1/imports, /_/imports): kinds
named and set up as the real ones are (csv, bitly-csv, bitly, yourls, kutt, kutt-api,
shlink, shlink-csv, kurz), which read a small file of their own or a list, and keep
what each import opened them with. The sources themselves have their own tests; these
show that every front end gives them what the person asked for."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel, Field, SecretStr

from kurz.imports.sources import (
    Item,
    NoSettings,
    Opening,
    Page,
    Record,
    Source,
    SourceError,
    SourceKind,
    Unreadable,
)
from kurz.jobs import Worker

# Links a page holds: small, so that an import of a few lines has several pages.
PAGE = 2
# The token, API key or database URL a source accepts; any other is refused.
GOOD = "good-secret"


class Bitly(BaseModel):
    token: SecretStr = Field(description="A Bitly access token.")
    api_url: str = "https://api-ssl.bitly.com/v4"
    group_guid: str | None = None
    clicks: bool = True


class Yourls(BaseModel):
    database_url: SecretStr
    table_prefix: str = "yourls_"
    timezone: str = "UTC"


class Kutt(BaseModel):
    database_url: SecretStr
    timezone: str = "UTC"


class Api(BaseModel):
    api_url: str
    api_key: SecretStr


class ShlinkCsv(BaseModel):
    default_domain: str | None = None


@dataclass
class Opened:
    """What imports opened the sources with, in order: the kind, its settings as plain
    values, the file's bytes, and whether private addresses were allowed."""

    seen: list[tuple[str, dict[str, Any], bytes | None, bool]] = field(default_factory=list)
    # Whether a line `CTRL-C` has stopped an import yet (as a person's Ctrl-C would);
    # read again, it is passed over.
    interrupted: bool = False


@dataclass
class Lines(Source):
    """A file of URLs, one a line, each optionally followed by a space and an alias; a
    line that does not start with http is unreadable. Not UTF-8: unreadable as a whole.
    The first `CTRL-C` line read interrupts the import."""

    text: str
    opened: Opened

    async def total(self) -> int | None:
        return sum(1 for line in self.text.splitlines() if line.strip() not in {"", "CTRL-C"})

    async def pages(self, after: str | None) -> AsyncIterator[Page]:
        numbered = [(n, line.strip()) for n, line in enumerate(self.text.splitlines(), 1)]
        lines = [(n, line) for n, line in numbered if line and line != "CTRL-C"]
        stop = next((n for n, line in numbered if line == "CTRL-C"), None)
        start = 0 if after is None else int(after)
        for at in range(start, len(lines), PAGE):
            items: list[Item] = []
            if stop is not None and not self.opened.interrupted and lines[at][0] > stop:
                self.opened.interrupted = True
                raise KeyboardInterrupt
            for n, line in lines[at : at + PAGE]:
                url, _, alias = line.partition(" ")
                if not url.startswith("http"):
                    items.append(Unreadable(f"line {n}", "not a URL", source_id=str(n)))
                else:
                    items.append(Record(f"line {n}", str(n), url, alias=alias or None))
            yield Page(items, str(at + PAGE))

    async def aclose(self) -> None:
        return None


def _secret(settings: BaseModel) -> str | None:
    for name in ("token", "api_key", "database_url"):
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            return value.get_secret_value()
    return None


def kind(
    name: str, opened: Opened, *, settings: type[BaseModel] = NoSettings, takes_file: bool = False
) -> SourceKind:
    takes_file = takes_file or settings is NoSettings

    def open_(opening: Opening) -> Source:
        plain = {
            key: value.get_secret_value() if isinstance(value, SecretStr) else value
            for key, value in opening.settings.model_dump().items()
        }
        body = opening.file.read_bytes() if opening.file is not None else None
        opened.seen.append((name, plain, body, opening.allow_private))
        if body is not None:
            try:
                return Lines(body.decode(), opened)
            except UnicodeDecodeError:
                raise SourceError("the file is not UTF-8 text") from None
        if _secret(opening.settings) != GOOD:
            raise SourceError("the source refused the token")
        return Lines("https://example.com/api-1\nhttps://example.com/api-2\n", opened)

    return SourceKind(
        name=name,
        title=f"Test {name}",
        source=name.removesuffix("-csv").removesuffix("-api"),
        takes_file=takes_file,
        open=open_,
        settings=settings,
        notes=(f"A stand-in for {name}.",),
    )


def kinds(opened: Opened) -> Mapping[str, SourceKind]:
    made = [
        kind("csv", opened),
        kind("kurz", opened),
        kind("bitly-csv", opened),
        kind("bitly", opened, settings=Bitly),
        kind("yourls", opened, settings=Yourls),
        kind("kutt", opened, settings=Kutt),
        kind("kutt-api", opened, settings=Api),
        kind("shlink", opened, settings=Api),
        kind("shlink-csv", opened, settings=ShlinkCsv, takes_file=True),
    ]
    return {made_kind.name: made_kind for made_kind in made}


def with_kinds(app: FastAPI) -> Opened:
    """The app's imports read the stand-ins; what they were opened with."""
    opened = Opened()
    app.state.kurz.imports.kinds = kinds(opened)
    return opened


async def run_jobs(app: FastAPI) -> None:
    """Run whatever jobs are due (the imports queued, and kurz's periodic ones) until
    none is."""
    worker = Worker(app.state.kurz.jobs, app.state.kurz.registry, concurrency=4)
    for _ in range(50):
        if not await worker.run_once():
            return
    raise AssertionError("jobs kept coming")


CSV = (
    b"https://example.com/one one\n"
    b"https://example.com/two\n"
    b"not a url\n"
    b"https://example.com/three three\n"
)
