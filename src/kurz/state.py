"""The FastAPI dependencies that hand routes the parts of kurz.bootstrap they need."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, Request

if TYPE_CHECKING:
    # Only a type: the parts are the app's (kurz.app), which the bootstrap built.
    from kurz.bootstrap import Parts


async def get_state(request: Request) -> Parts:
    # async, though it awaits nothing: FastAPI runs a sync dependency in a worker thread.
    parts: Parts = request.app.state.kurz
    return parts


if TYPE_CHECKING:
    StateDep = Annotated[Parts, Depends(get_state)]
else:
    # At run time FastAPI needs only the dependency, not the type.
    StateDep = Annotated[Any, Depends(get_state)]


def part(name: str) -> Any:
    """A dependency for one part (a field of kurz.bootstrap.Parts), for a route that
    needs only that: `VisitsDep = Annotated[Visits, part("visits")]`."""

    async def get(request: Request) -> Any:
        return getattr(request.app.state.kurz, name)

    get.__name__ = f"get_{name}"
    return Depends(get)
