"""Who may open the admin pages: a signed-in admin. Anyone else gets the 404 page an
unknown address gets (never a 403 that says the page exists)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from kurz.errors import not_found
from kurz.web.viewer import Viewer, ViewerDep


async def admin_viewer(viewer: ViewerDep) -> Viewer:
    if not viewer.is_admin:
        raise not_found("No such page.")
    return viewer


AdminDep = Annotated[Viewer, Depends(admin_viewer)]
