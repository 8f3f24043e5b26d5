"""The browser tests' fixtures: one Chromium for the run (Debian's, driven by Playwright),
a fresh context with its own cookies for each test, and `kurz serve` processes of the
test's own. Without Chromium or Playwright the tests skip and say why; with CI=true they
fail instead.

Playwright's async API, with the browser in the session's event loop: every test module
here declares `pytestmark = pytest.mark.asyncio(loop_scope="session")`. (Its sync API
marks its own loop as running between calls, so every asyncio test after the first
browser test would fail.) Test modules import Playwright for types only, or inside a
test (`expect`): without it installed they must still import, and skip.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import pytest_asyncio

from tests.browser.support import CHROMIUM_FLAGS, CSP_LISTENER, WIDTHS, Kurz, Target, Watch
from tests.conftest import unavailable

if TYPE_CHECKING:
    from playwright.async_api import (
        Browser,
        BrowserContext,
        ConsoleMessage,
        Page,
        Route,
        WebError,
    )

NewContext = Callable[[], Awaitable["BrowserContext"]]


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        unavailable("the browser tests need Chromium: apt-get install chromium")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        unavailable("the browser tests need Playwright: pip install -e '.[dev]'")
    async with async_playwright() as playwright:
        # Debian's Chromium, never a browser Playwright would download.
        launched = await playwright.chromium.launch(
            executable_path=chromium, args=list(CHROMIUM_FLAGS)
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def user_agent(browser: Browser) -> str:
    """What the contexts say they are: this Chromium, less the "Headless" in its user
    agent, which kurz's click counts take for a bot's. The tests stand in for people."""
    probe = await browser.new_page()
    try:
        agent: str = await probe.evaluate("() => navigator.userAgent")
    finally:
        await probe.close()
    return agent.replace("HeadlessChrome/", "Chrome/")


@pytest.fixture
def watch() -> Iterator[Watch]:
    """What the test's pages must not have done, checked when it ends (after its
    contexts close)."""
    seen = Watch()
    yield seen
    problems = seen.problems()
    assert not problems, "\n".join(problems)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Kurz]]:
    """Start a `kurz serve` of the test's own (Kurz's arguments), ready to answer.
    All are stopped when the test ends."""
    started: list[Kurz] = []

    def start(*, fresh: bool = False, **env: str) -> Kurz:
        cwd = tmp_path / f"kurz-{len(started)}"
        cwd.mkdir()
        kurz = Kurz(cwd, fresh=fresh, **env)
        started.append(kurz)
        kurz.wait_ready()
        return kurz

    try:
        yield start
    finally:
        for kurz in started:
            kurz.stop()


@pytest.fixture
def kurz(serve: Callable[..., Kurz]) -> Kurz:
    """kurz with its admin (support.ADMIN) made on its first start."""
    return serve()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kurz]:
    """One kurz with its admin for a module's tests that change nothing the others see
    (reading pages, signing in): started once, as a kurz takes its time to start."""
    kurz = Kurz(tmp_path_factory.mktemp("site"))
    try:
        kurz.wait_ready()
        yield kurz
    finally:
        kurz.stop()


@pytest.fixture
def fresh_kurz(serve: Callable[..., Kurz]) -> Kurz:
    """kurz as first started: nobody can sign in, and it printed a setup link."""
    return serve(fresh=True)


@pytest.fixture
def target(watch: Watch) -> Iterator[Target]:
    """A web site of the test's own on 127.0.0.1 for its short URLs to lead to; the
    watch lets its pages ask it."""
    site = Target()
    watch.allowed.add(site.url)
    try:
        yield site
    finally:
        site.stop()


@pytest_asyncio.fixture(loop_scope="session")
async def new_context(browser: Browser, user_agent: str, watch: Watch) -> AsyncIterator[NewContext]:
    """Open another browser context: a person of their own, with their own cookies
    (a second session for the same person, or another person). Each is watched."""
    opened: list[BrowserContext] = []

    async def refuse(route: Route) -> None:
        watch.foreign.append(route.request.url)
        await route.abort("blockedbyclient")

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and "Content Security Policy" in message.text:
            watch.csp.append(message.text)

    def violated(report: str) -> None:
        watch.csp.append(report)

    def error(web_error: WebError) -> None:
        watch.errors.append(str(web_error.error))

    async def open_context() -> BrowserContext:
        width, height = WIDTHS[0]
        context = await browser.new_context(
            viewport={"width": width, "height": height}, user_agent=user_agent
        )
        opened.append(context)
        await context.route(lambda url: not watch.allows(url), refuse)
        await context.expose_function("kurzCspViolation", violated)
        await context.add_init_script(CSP_LISTENER)
        context.on("console", console)
        context.on("weberror", error)
        return context

    try:
        yield open_context
    finally:
        for context in opened:
            await context.close()


@pytest_asyncio.fixture(loop_scope="session")
async def context(new_context: NewContext) -> BrowserContext:
    return await new_context()


@pytest_asyncio.fixture(loop_scope="session")
async def page(context: BrowserContext) -> Page:
    return await context.new_page()
