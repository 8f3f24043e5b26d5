"""User agents sorted into what kurz counts and targets: browser and OS families, device
class, bot or not.

Click analytics counts them (kurz.analytics) and targeting rules match them
(kurz.links.routes), so the classifier lives below both. Depends on kurz.cache alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from kurz.cache import LRUCache

if TYPE_CHECKING:
    import ua_parser

DeviceClass = Literal["desktop", "mobile", "tablet", "bot", "other"]


@dataclass(frozen=True, slots=True)
class Agent:
    """A user agent, as counted: browser and OS families, device class, bot or not."""

    browser: str
    os: str
    device: DeviceClass
    bot: bool


# Crawlers, link previews (chat apps fetch a link to show a card) and HTTP libraries:
# none of them is a person clicking. ua-parser already calls most crawlers "Spider";
# this catches the rest. "cu" because CUBOT is a phone brand, not a robot.
_BOT_TOKENS = re.compile(
    r"(?<!cu)bot|crawl|spider|slurp|facebookexternalhit|facebookcatalog|embedly|preview"
    r"|whatsapp|curl/|wget/|python-|go-http-client|java/|okhttp|node-fetch|axios/|libwww"
    r"|httpclient|headless|lighthouse|scrapy",
    re.IGNORECASE,
)
_TABLET_DEVICE = re.compile(r"ipad|tablet|kindle|playbook", re.IGNORECASE)
_MOBILE_OS = frozenset(
    {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Firefox OS", "Tizen"}
)
_DESKTOP_OS = frozenset(
    {
        "Windows",
        "Mac OS X",
        "Chrome OS",
        "Linux",
        "Ubuntu",
        "Debian",
        "Fedora",
        "Red Hat",
        "SUSE",
        "openSUSE",
        "Linux Mint",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
    }
)
# Longer user agents are cut before parsing and caching: real ones stay under 500
# characters, and a client sending 8 KB headers must not make the cache hold 80 MB.
_MAX_USER_AGENT = 512
_NO_AGENT = Agent("Other", "Other", "bot", True)


class Classifier:
    """Sorts user agents into Agents, parsing each distinct string once.

    A few user agent strings make most of the traffic, and a parse costs far more than
    a cache hit (docs/analytics.md), so the answers are kept in an LRU cache.
    """

    __slots__ = ("_resolver", "cache")

    def __init__(self, max_entries: int = 10_000) -> None:
        self.cache: LRUCache[str, Agent] = LRUCache(max_entries)
        # Built on the first parse: loading the regexes is slow (docs/analytics.md).
        self._resolver: ua_parser.Resolver | None = None

    def prepare(self) -> None:
        """Import the parser now, in a process that will classify (kurz.analytics'
        recorder, when it is built): else its first batch of clicks pays the import
        (about 0.015 s of CPU) in the middle of serving."""
        import ua_parser  # noqa: F401

    def __call__(self, user_agent: str | None) -> Agent:
        if not user_agent:
            # Every browser sends a user agent; a request without one is a script.
            return _NO_AGENT
        user_agent = user_agent[:_MAX_USER_AGENT]
        agent = self.cache.get(user_agent)
        if agent is None:
            agent = self._parse(user_agent)
            self.cache.put(user_agent, agent)
        return agent

    def _parse(self, user_agent: str) -> Agent:
        # Imported by `prepare` where clicks are recorded; here for any other caller (a
        # process that never parses an agent spares ua-parser's import).
        import ua_parser

        if self._resolver is None:
            self._resolver = ua_parser.BestAvailableResolver(ua_parser.load_lazy_builtins())
        result = self._resolver(user_agent, ua_parser.Domain.ALL)
        browser = result.user_agent.family if result.user_agent else "Other"
        os_family = result.os.family if result.os else "Other"
        device = result.device
        bot = (device is not None and device.family == "Spider") or bool(
            _BOT_TOKENS.search(user_agent)
        )
        return Agent(browser, os_family, _device_class(user_agent, os_family, device, bot), bot)


def _device_class(
    user_agent: str, os: str, device: ua_parser.Device | None, bot: bool
) -> DeviceClass:
    """The device class, decided in this order: bot, tablet, mobile, desktop, other.

    Tablet: the parsed device names a tablet (iPad, Kindle, a "Tablet" brand), or
    Android without the "Mobile" token, which Android tablets leave out. Mobile: a
    phone OS, or "Mobi" anywhere in the string. Desktop: a desktop OS. An iPad since
    iPadOS 13 sends a Mac's user agent by default and is counted as a desktop: nothing
    in the request tells them apart.
    """
    if bot:
        return "bot"
    if device is not None and (
        _TABLET_DEVICE.search(device.family) or _TABLET_DEVICE.search(device.brand or "")
    ):
        return "tablet"
    if os == "Android" and "Mobile" not in user_agent:
        return "tablet"
    if os in _MOBILE_OS or "Mobi" in user_agent:
        return "mobile"
    if os in _DESKTOP_OS:
        return "desktop"
    return "other"


classify = Classifier()
