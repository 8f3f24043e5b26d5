"""The two pages a short link's own address may show instead of a redirect: the
password form, and the preview page a link-preview bot gets (docs/passwords-and-bots.md).

Neither ever holds the link's target. They are plain HTML styled by kurz.web's sheet
(its address, not an import: kurz.web sits above the domains), and run no script.
"""

from __future__ import annotations

import html
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import HTMLResponse

from kurz.links.target import Target

# As kurz.web's pages, with one difference: Chrome applies form-action to the redirect
# that answers a form, so the form may lead to any web address (which one, the page
# must not say).
FORM_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; "
    "form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
PREVIEW_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}

_BASE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>{title}</title>
{meta}<link rel="stylesheet" href="/_/static/kurz.css">
</head>
<body>
<main>
<h1>{heading}</h1>
{content}
</main>
</body>
</html>
"""

_FORM = """<p>This short link is protected by a password.</p>
{error}<form method="post" action="{action}">
<div class="field{invalid}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="off" required autofocus
{described}>
</div>
<button type="submit">Open the link</button>
</form>"""


def _action(request: Request) -> str:
    """Where the form posts: this address, with the query the link may forward."""
    query = request.scope["query_string"].decode("latin-1")
    return request.url.path + (f"?{query}" if query else "")


def password_form(
    request: Request, status: int, *, error: str = "", headers: dict[str, str] | None = None
) -> HTMLResponse:
    """The form asking for a link's password, with `error` if the last try failed."""
    e = html.escape
    content = _FORM.format(
        action=e(_action(request)),
        error=f'<p class="error" id="password-error" role="alert">{e(error)}</p>\n'
        if error
        else "",
        invalid=" invalid" if error else "",
        described=' aria-invalid="true" aria-describedby="password-error"' if error else "",
    )
    body = _BASE.format(
        title="Password required · kurz", meta="", heading="Password required", content=content
    )
    return HTMLResponse(body, status, headers={**FORM_HEADERS, **(headers or {})})


def preview(request: Request, target: Target) -> HTMLResponse:
    """What a link-preview bot is shown: the link's Open Graph fields if it has them,
    else a neutral card; never the target."""
    e = html.escape
    title = target.og_title or "Short link"
    description = target.og_description or (
        "Protected by a password." if target.protected else "Open the link in a browser."
    )
    tags = [
        ("og:type", "website"),
        ("og:url", str(request.url.replace(query="", fragment=""))),
        ("og:title", title),
        ("og:description", description),
        ("twitter:card", "summary_large_image" if target.og_image else "summary"),
    ]
    if target.og_image:
        tags.append(("og:image", target.og_image))
        if urlsplit(target.og_image).scheme == "https":
            tags.append(("og:image:secure_url", target.og_image))
    meta = "".join(
        f'<meta {"name" if key.startswith("twitter:") else "property"}="{key}" '
        f'content="{e(value)}">\n'
        for key, value in tags
    )
    meta += f'<meta name="description" content="{e(description)}">\n'
    body = _BASE.format(
        title=e(title), meta=meta, heading=e(title), content=f"<p>{e(description)}</p>"
    )
    return HTMLResponse(body, 200, headers=PREVIEW_HEADERS)
