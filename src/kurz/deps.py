"""FastAPI dependencies: a route asks for the parts of kurz.bootstrap it needs, by name."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, Request


def part(name: str) -> Any:
    """A dependency for one part (a field of kurz.bootstrap.Parts), so that a route
    names only what it uses: `VisitsDep = Annotated[Visits, part("visits")]`."""

    # async, though it awaits nothing: FastAPI runs a sync dependency in a worker thread.
    async def get(request: Request) -> Any:
        return getattr(request.app.state.kurz, name)

    get.__name__ = f"get_{name}"
    return Depends(get)
