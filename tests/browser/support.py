"""What the browser tests share: a `kurz serve` of the test's own, what its pages must
never do (send a request elsewhere, break the CSP, throw), and the checks every page
gets: axe-core finds no violation, and a screenshot at a desktop and a phone width."""

from __future__ import annotations

import hashlib
import html
import os
import re
import subprocess
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import urlsplit

from tests.e2e.support import KURZ, PATIENCE, Server, kurz_env, run
from tests.integration.auth.people import PASSWORD

if TYPE_CHECKING:
    from playwright.async_api import Page, Response

ROOT: Final = Path(__file__).resolve().parents[2]
AXE: Final = Path(__file__).with_name("vendor") / "axe-core" / "axe.min.js"
# axe-core 4.14.1 (tests/browser/vendor/README.md): a changed file fails loudly.
AXE_SHA256: Final = "29348999450cdf2849a8e70b7912fc2da85a849da39c0d0d5394f51d4a9ed95c"
# The run's output folder (gitignored); KURZ_SCREENSHOTS puts them elsewhere.
SCREENSHOTS: Final = Path(
    os.environ.get("KURZ_SCREENSHOTS") or ROOT / "test-output" / "screenshots"
)
# A desktop and the narrowest phone the pages are made for, each (width, height).
WIDTHS: Final = ((1280, 800), (360, 740))
ADMIN: Final = "ada@example.com"
SETUP_LINE: Final = re.compile(r"Open (http://\S+/_/setup/[A-Za-z0-9_-]+) within an hour")
CHROMIUM_FLAGS: Final = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class Kurz:
    """A `kurz serve` of the test's own, on a free port with a fresh SQLite database;
    set up with the admin ADMIN (password PASSWORD) unless `fresh`, when it prints the
    setup link a person follows on a first run instead."""

    # The origin of every kurz the run started: the only ones its pages may ask.
    origins: ClassVar[set[str]] = set()

    def __init__(self, cwd: Path, *, fresh: bool = False, **env: str) -> None:
        settings = {
            "KURZ_DATABASE_URL": f"sqlite:///{cwd / 'kurz.db'}",
            "KURZ_GRPC_PORT": "0",
            # Chromium opens connections before it has a request for them; on a busy
            # machine one may wait longer than the default for its request's head, and
            # kurz would close it under the browser.
            "KURZ_HEAD_TIMEOUT": "3600",
            # A signed-in page counts against the API's limit (120 a minute, bursts of
            # 20), and a test clicks faster than a person: it met 429 pages.
            "KURZ_RATELIMIT_API": "6000/60s;burst=1000",
        }
        if not fresh:
            secret = cwd / "admin-password"
            secret.write_text(PASSWORD + "\n")
            settings |= {
                "KURZ_INITIAL_ADMIN_EMAIL": ADMIN,
                "KURZ_INITIAL_ADMIN_PASSWORD_FILE": str(secret),
            }
        self.server = Server(cwd, kurz_env(**settings, **env))
        self.url = self.server.url
        Kurz.origins.add(self.url)

    def wait_ready(self) -> None:
        self.server.wait_ready()

    def at(self, path: str) -> str:
        return self.url + path

    def add_user(self, email: str, *, admin: bool = False, password: str = PASSWORD) -> None:
        """A user made as an operator makes one: `kurz users create`."""
        made = subprocess.run(
            [KURZ, "users", "create", "--email", email, "--password-stdin"]
            + (["--admin"] if admin else []),
            env=self.server.env,
            cwd=self.server.cwd,
            input=password + "\n",
            capture_output=True,
            text=True,
            timeout=PATIENCE,
            check=False,
        )
        assert made.returncode == 0, made.stderr

    def api_key(self, user: str = ADMIN, name: str = "browser-tests") -> str:
        """The secret of an API key acting for `user`, made by `kurz keys create`: to
        make what a test's pages then show faster than through them."""
        args = ["keys", "create", "--name", name, "--user", user]
        made = run(args, self.server.env, self.server.cwd)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip()

    def setup_link(self) -> str:
        """The setup link `kurz serve` printed when it started."""
        found = SETUP_LINE.findall(self.server.output())
        assert found, f"kurz serve printed no setup link:\n{self.server.output()}"
        return str(found[-1])

    def stop(self) -> None:
        self.server.stop()


@dataclass
class Watch:
    """What a test's pages did that no page of kurz may do, reported when the test ends:
    a request for another origin than a kurz of the run's (it is refused, so nothing
    leaves), a violation of the Content-Security-Policy, an uncaught error."""

    foreign: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # Origins the test allows besides kurz's: a Target of its own.
    allowed: set[str] = field(default_factory=set)

    def allows(self, url: str) -> bool:
        parts = urlsplit(url)
        if parts.scheme in {"data", "blob", "about"}:
            return True
        origin = f"{parts.scheme}://{parts.netloc}"
        return origin in Kurz.origins or origin in self.allowed

    def problems(self) -> list[str]:
        return (
            [f"request to another origin: {url}" for url in self.foreign]
            + [f"CSP violation: {report}" for report in self.csp]
            + [f"page error: {error}" for error in self.errors]
        )


class Target:
    """A web site of a test's own on a free port of 127.0.0.1, for short URLs to send the
    browser to without a request leaving the machine: every GET gets a page headed
    "Landed" that names its path. `visited` lists the paths asked, in order."""

    def __init__(self) -> None:
        visited: list[str] = []

        class Landed(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                visited.append(self.path)
                body = (
                    "<!doctype html><html lang=en><title>Landed</title>"
                    f"<h1>Landed</h1><p>{html.escape(self.path)}</p></html>"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: pytest shows what a failing test printed, not every request."""

        self.visited = visited
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Landed)
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def at(self, path: str) -> str:
        return self.url + path

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


# Runs in every page before its own scripts (through the DevTools protocol, which the
# CSP does not govern) and reports each violation the browser sees to Watch.csp.
CSP_LISTENER: Final = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.kurzCspViolation(
    `${event.effectiveDirective} blocked ${event.blockedURI || "inline"} ` +
    `on ${event.documentURI} (${event.sourceFile}:${event.lineNumber})`);
});
"""


@cache
def _axe_source() -> str:
    source = AXE.read_bytes()
    digest = hashlib.sha256(source).hexdigest()
    assert digest == AXE_SHA256, f"{AXE} is not axe-core 4.14.1 (sha256 {digest})"
    return source.decode()


# Only what a reader needs from axe's results: the rule, how bad, and where.
_RUN_AXE: Final = """
async (disabled) => {
  const results = await axe.run(document, {
    resultTypes: ["violations"],
    rules: Object.fromEntries(disabled.map((id) => [id, {enabled: false}])),
  });
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help, url: v.helpUrl,
    nodes: v.nodes.map((n) => ({target: n.target.join(" "), why: n.failureSummary})),
  }));
}
"""


async def check_accessibility(page: Page, *, disabled: Iterable[str] = ()) -> None:
    """axe-core finds no violation on the page as it is now, in the light and the dark
    colour scheme (kurz.css has both). axe is evaluated through the DevTools protocol, so
    the page's real CSP stays on. `disabled`: rule ids not run, each with a reason where
    it is passed."""
    if not await page.evaluate("() => typeof window.axe === 'object'"):
        await page.evaluate(_axe_source())
    found: list[str] = []
    for scheme in ("light", "dark"):
        await page.emulate_media(color_scheme=scheme)
        violations: list[dict[str, Any]] = await page.evaluate(_RUN_AXE, list(disabled))
        found += [_readable(violation, scheme) for violation in violations]
    await page.emulate_media(color_scheme="light")
    assert not found, f"axe-core on {page.url}:\n" + "\n".join(found)


def _readable(violation: dict[str, Any], scheme: str) -> str:
    lines = [
        f"- {violation['id']} ({violation['impact']}, {scheme}): {violation['help']} "
        f"<{violation['url']}>"
    ]
    for node in violation["nodes"]:
        why = str(node["why"]).replace("\n", "\n      ")
        lines.append(f"    {node['target']}\n      {why}")
    return "\n".join(lines)


async def screenshot(page: Page, name: str) -> list[Path]:
    """The whole page at each of WIDTHS, as SCREENSHOTS/<name>-<width>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    before = page.viewport_size
    paths = []
    for width, height in WIDTHS:
        await page.set_viewport_size({"width": width, "height": height})
        path = SCREENSHOTS / f"{name}-{width}.png"
        # caret="hide" would leave an empty style attribute on every input, which htmx
        # then copies onto what it swaps in: a CSP violation no person would cause.
        await page.screenshot(path=path, full_page=True, caret="initial")
        paths.append(path)
    if before is not None:
        await page.set_viewport_size(before)
    return paths


# How wide the page's content is, and (to say what to fix) the outermost elements that
# stick out past `width` outside anything that scrolls sideways (a .table-wrap), or if
# none does, the innermost of all that reach past it.
_WIDTH = """
(width) => {
  const scrolls = (el) => ["auto", "scroll", "hidden", "clip"].includes(
    getComputedStyle(el).overflowX);
  const name = (el) => el.tagName.toLowerCase() + (el.id ? `#${el.id}` : "") +
    [...el.classList].map((c) => `.${c}`).join("");
  const out = [];
  const walk = (el) => {
    for (const child of el.children) {
      const box = child.getBoundingClientRect();
      if (box.right > width + 1 && box.width > 0) {
        out.push(`${name(child)} reaches ${Math.round(box.right)}px`);
      } else if (!scrolls(child)) {
        walk(child);
      }
    }
  };
  walk(document.body);
  if (out.length === 0) {  // something positioned that escapes its scrolling box
    for (const el of document.body.querySelectorAll("*")) {
      const box = el.getBoundingClientRect();
      if (box.right > width + 1) out.push(`${name(el)} reaches ${Math.round(box.right)}px`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, out: out.slice(-10)};
}
"""


async def check_fits(page: Page) -> None:
    """At the narrowest width the pages are made for (WIDTHS), nothing sticks out
    sideways: the page scrolls only down (a wide table scrolls inside its .table-wrap)."""
    width, height = WIDTHS[-1]
    before = page.viewport_size
    await page.set_viewport_size({"width": width, "height": height})
    try:
        measured: dict[str, Any] = await page.evaluate(_WIDTH, width)
    finally:
        if before is not None:
            await page.set_viewport_size(before)
    # One pixel for rounding: a layout of fractional widths may round up.
    assert measured["scrollWidth"] <= width + 1, (
        f"{page.url} is {measured['scrollWidth']}px wide at {width}px: "
        + "; ".join(measured["out"])
    )


async def check_page(page: Page, name: str) -> None:
    """What every page of kurz gets: axe-core finds no violation, it fits a phone's
    width, and its screenshots (`name`)."""
    await check_accessibility(page)
    await check_fits(page)
    await screenshot(page, name)


async def submit(page: Page, button: str) -> Response:
    """Click the button named `button` and wait for the page the form's post leads to;
    its response (the last one, after any redirect)."""
    async with page.expect_navigation() as navigation:
        await page.get_by_role("button", name=button).click()
    response = await navigation.value
    assert response is not None
    return response


async def sign_in(page: Page, kurz: Kurz, email: str = ADMIN, password: str = PASSWORD) -> None:
    """Sign in through the sign-in page, as a person does; lands on the dashboard."""
    await page.goto(kurz.at("/_/signin"))
    await page.get_by_label("Email address").fill(email)
    await page.get_by_label("Password").fill(password)
    response = await submit(page, "Sign in")
    assert response.status == 200, await page.content()
    assert page.url == kurz.at("/_/dashboard"), page.url
