"""How every page of the web app is made: one Jinja2 environment (autoescaped), one
set of security headers, and the layout's context (who is signed in, their CSRF token,
the assets' hashed addresses)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, Final

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from kurz import __version__
from kurz.web import assets

# Scripts and styles only from kurz's own files (no inline code, so no nonce is needed);
# images from kurz or data: (QR codes, Swagger UI's icons); no framing; forms post only
# to kurz. Pages hold tokens and links in their addresses: no Referer leaves.
CSP: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Where kurz.web.viewer leaves the signed-in viewer for the layout.
VIEWER: Final = "kurz.web.viewer"
HEADERS: Final = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


@cache
def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("kurz.web", "templates"),
        autoescape=select_autoescape(["html", "svg"], default_for_string=True),
        auto_reload=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["asset"] = assets.url
    env.globals["version"] = __version__
    return env


def render(
    request: Request | None,
    template: str,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """The page `template` with `context`, and who is signed in (kurz.web.viewer) if
    the request was."""
    viewer = request.scope.get(VIEWER) if request is not None else None
    body = templates().get_template(template).render(viewer=viewer, **context)
    return HTMLResponse(body, status, headers={**HEADERS, **(headers or {})})


def message(
    request: Request | None,
    title: str,
    text: str,
    status: int = 200,
    *,
    more: str = "",
    error: bool = False,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A page that only says something (a refusal, a spent link, a done)."""
    return render(
        request, "message.html", status, headers, title=title, message=text, more=more,
        error=error,
    )  # fmt: skip
