"""kurz.analytics.events: referrer hosts, user agents, visitor hashes, click events."""

from __future__ import annotations

import ipaddress
import itertools
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kurz.analytics
from kurz.analytics import (
    Agent,
    Classifier,
    DailySalt,
    Visits,
    classify,
    click_event,
    from_request,
    referrer_host,
    visitor_hash,
)
from kurz.analytics.events import FIELDS, ClickEvent, decode, encode

VISITOR = FIELDS.index("visitor")

CHROME_WINDOWS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
SAFARI_IPAD = (
    "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
CHROME_ANDROID_PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.6367.82 Mobile Safari/537.36"
)
CHROME_ANDROID_TABLET = (
    "Mozilla/5.0 (Linux; Android 13; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
CUBOT_PHONE = (
    "Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/96.0.4664.104 Mobile Safari/537.36"
)
VISITOR = FIELDS.index("visitor")
FIREFOX_LINUX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
SLACKBOT = "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"
CURL = "curl/8.5.0"
HEADLESS_CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/124.0.0.0 Safari/537.36"
)


def test_the_public_names_are_sorted_and_exported() -> None:
    assert kurz.analytics.__all__ == sorted(kurz.analytics.__all__)
    for name in kurz.analytics.__all__:
        assert hasattr(kurz.analytics, name)


# --- Referrer -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("referer", "host"),
    [
        (None, None),
        ("", None),
        ("   ", None),
        ("not a url at all", None),
        ("/relative/path", None),
        ("//example.com/scheme-relative", None),
        ("ftp://example.com/file", None),
        ("android-app://com.google.android.gm/", None),
        ("javascript:alert(1)", None),
        ("http://", None),
        ("https://exa mple.com/", None),
        ("http://[::1", None),
        ("http://[not-ipv6]/", None),
        ("https://example.com", "example.com"),
        ("https://news.example.com/a/b?c=d#e", "news.example.com"),
        ("HTTPS://News.EXAMPLE.com/Path", "news.example.com"),
        ("https://www.example.com/", "example.com"),
        ("https://WWW.Example.com./", "example.com"),
        ("https://www2.example.com/", "www2.example.com"),
        ("https://www/", "www"),
        ("https://user:secret@example.com/", "example.com"),
        ("https://example.com:8443/x", "example.com"),
        ("http://203.0.113.9:8080/", "203.0.113.9"),
        ("http://[2001:DB8::1]:8080/", "2001:db8::1"),
        ("http://[2001:0db8:0000::0001]/", "2001:db8::1"),
        (" https://example.com/ ", "example.com"),
    ],
)
def test_referrer_host(referer: str | None, host: str | None) -> None:
    assert referrer_host(referer) == host


@given(st.text())
def test_referrer_host_never_raises_on_any_text(text: str) -> None:
    host = referrer_host(text)
    assert host is None or (host == host.lower() and not host.startswith("www."))


@given(st.text().map(lambda path: "https://" + path))
def test_referrer_host_never_raises_on_any_https_text(text: str) -> None:
    referrer_host(text)


# --- User agent -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "agent"),
    [
        (CHROME_WINDOWS, Agent("Chrome", "Windows", "desktop", False)),
        (SAFARI_IPHONE, Agent("Mobile Safari", "iOS", "mobile", False)),
        (SAFARI_IPAD, Agent("Mobile Safari", "iOS", "tablet", False)),
        (CHROME_ANDROID_PHONE, Agent("Chrome Mobile", "Android", "mobile", False)),
        (CHROME_ANDROID_TABLET, Agent("Chrome", "Android", "tablet", False)),
        (CUBOT_PHONE, Agent("Chrome Mobile", "Android", "mobile", False)),
        (FIREFOX_LINUX, Agent("Firefox", "Ubuntu", "desktop", False)),
        (GOOGLEBOT, Agent("Googlebot", "Other", "bot", True)),
        (SLACKBOT, Agent("Slackbot-LinkExpanding", "Other", "bot", True)),
        (CURL, Agent("curl", "Other", "bot", True)),
        (HEADLESS_CHROME, Agent("HeadlessChrome", "Linux", "bot", True)),
        (None, Agent("Other", "Other", "bot", True)),
        ("", Agent("Other", "Other", "bot", True)),
        ("\x00\xff garbage", Agent("Other", "Other", "other", False)),
    ],
)
def test_classify(user_agent: str | None, agent: Agent) -> None:
    assert classify(user_agent) == agent


def test_a_user_agent_is_parsed_once_then_answered_from_the_cache() -> None:
    classifier = Classifier(max_entries=10)
    first = classifier(CHROME_WINDOWS)
    assert classifier.cache.stats().hits == 0
    assert classifier(CHROME_WINDOWS) is first
    stats = classifier.cache.stats()
    assert (stats.hits, stats.misses, stats.entries) == (1, 1, 1)


def test_the_cache_is_bounded() -> None:
    classifier = Classifier(max_entries=2)
    for user_agent in (CHROME_WINDOWS, FIREFOX_LINUX, SAFARI_IPHONE):
        classifier(user_agent)
    assert len(classifier.cache) == 2
    assert classifier.cache.stats().evictions == 1


def test_a_huge_user_agent_is_cut_before_it_is_cached() -> None:
    huge = CHROME_WINDOWS + "x" * 10_000
    classifier = Classifier()
    assert classifier(huge) == classify(CHROME_WINDOWS)
    assert len(classifier.cache) == 1
    assert huge[:512] in classifier.cache


# --- Visitor hash ---------------------------------------------------------------

SALT = bytes(range(32))


def test_the_same_visitor_on_the_same_day_hashes_the_same() -> None:
    first = visitor_hash("203.0.113.7", CHROME_WINDOWS, "2024-05-31", SALT)
    assert first == visitor_hash("203.0.113.7", CHROME_WINDOWS, "2024-05-31", SALT)
    assert len(first) == 16
    int(first, 16)


@pytest.mark.parametrize(
    ("ip", "user_agent", "day", "salt"),
    [
        ("203.0.113.7", CHROME_WINDOWS, "2024-06-01", SALT),
        ("203.0.113.7", CHROME_WINDOWS, "2024-05-31", bytes(32)),
        ("203.0.113.8", CHROME_WINDOWS, "2024-05-31", SALT),
        ("203.0.113.7", FIREFOX_LINUX, "2024-05-31", SALT),
        ("203.0.113.7", None, "2024-05-31", SALT),
    ],
)
def test_any_other_input_hashes_differently(
    ip: str, user_agent: str | None, day: str, salt: bytes
) -> None:
    base = visitor_hash("203.0.113.7", CHROME_WINDOWS, "2024-05-31", SALT)
    assert visitor_hash(ip, user_agent, day, salt) != base


@given(st.ip_addresses(), st.text(), st.binary(min_size=1, max_size=64))
def test_the_hash_never_contains_the_ip(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address, user_agent: str, salt: bytes
) -> None:
    digest = visitor_hash(str(ip), user_agent, "2024-05-31", salt)
    assert len(digest) == 16
    assert str(ip) not in digest
    assert ip.packed.hex() not in digest


# --- Daily salt -----------------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now.timestamp()

    def __call__(self) -> float:
        return self.now


def test_the_salt_rotates_at_utc_midnight() -> None:
    clock = Clock(datetime(2024, 5, 31, 23, 59, 59, tzinfo=UTC))
    counter = itertools.count(1)
    salt = DailySalt(clock, lambda size: next(counter).to_bytes(size, "big"))

    day, first = salt.current()
    assert day == "2024-05-31"
    clock.now += 0.999
    assert salt.current() == (day, first)

    clock.now += 0.001  # 2024-06-01T00:00:00Z
    day, second = salt.current()
    assert day == "2024-06-01"
    assert second != first
    assert len(second) == 32
    clock.now += 86_399
    assert salt.current() == ("2024-06-01", second)


def test_without_shared_salts_each_instance_makes_its_own() -> None:
    clock = Clock(datetime(2024, 5, 31, 12, tzinfo=UTC))
    assert DailySalt(clock).current()[1] != DailySalt(clock).current()[1]


def test_shared_salts_are_used_by_every_instance_and_replace_a_made_up_one() -> None:
    clock = Clock(datetime(2024, 5, 31, 12, tzinfo=UTC))
    today = int(clock.now // 86_400)
    shared = {today: b"a" * 32, today + 1: b"b" * 32}
    first, second = DailySalt(clock), DailySalt(clock)
    first.share(shared)
    assert first.current() == ("2024-05-31", b"a" * 32)
    # `second` made up its own salt before the database answered, then is told.
    assert second.current()[1] != b"a" * 32
    second.share(shared)
    assert second.current() == first.current()
    clock.now += 86_400
    assert first.current() == second.current() == ("2024-06-01", b"b" * 32)


def test_a_clock_stepped_back_keeps_todays_salt() -> None:
    clock = Clock(datetime(2024, 6, 1, 0, 0, 1, tzinfo=UTC))
    counter = itertools.count(1)
    salt = DailySalt(clock, lambda size: next(counter).to_bytes(size, "big"))
    today = salt.current()
    clock.now -= 2  # back into 2024-05-31
    assert salt.current() == today


# --- Click event ----------------------------------------------------------------


def test_a_click_event_is_derived_from_the_request() -> None:
    clock = Clock(datetime(2024, 5, 31, 12, tzinfo=UTC))
    salt = DailySalt(clock, lambda size: b"s" * size)
    event = from_request(
        link_id=42,
        at=clock.now,
        client_ip="203.0.113.7",
        user_agent=SAFARI_IPHONE,
        referer="https://www.news.example/story?id=1",
        salt=salt,
        country="DE",
    )
    assert event == click_event(
        link_id=42,
        at=clock.now,
        referrer_host="news.example",
        browser="Mobile Safari",
        os="iOS",
        device="mobile",
        bot=False,
        country="DE",
        visitor=visitor_hash("203.0.113.7", SAFARI_IPHONE, "2024-05-31", b"s" * 32),
    )
    assert "203.0.113.7" not in repr(event)


def test_a_request_without_a_user_agent_is_a_bot() -> None:
    event = from_request(
        link_id=1,
        at=0.0,
        client_ip="203.0.113.7",
        user_agent=None,
        referer=None,
        salt=DailySalt(),
    )
    fields = dict(zip(FIELDS, event, strict=True))
    assert (fields["referrer_host"], fields["bot"], fields["device"]) == (None, True, "bot")


@pytest.mark.parametrize("referer", ["https://www.example.com/", "ftp://example.com/", ""])
def test_a_cached_referrer_answers_like_a_parsed_one(referer: str) -> None:
    salt = DailySalt()
    for _ in range(2):
        event = from_request(
            link_id=1,
            at=0.0,
            client_ip="203.0.113.7",
            user_agent=CURL,
            referer=referer,
            salt=salt,
        )
        assert dict(zip(FIELDS, event, strict=True))["referrer_host"] == referrer_host(referer)


# --- Visits: a visitor's clicks derived once a day --------------------------------

_AGENTS = [None, CHROME_WINDOWS, SAFARI_IPHONE, CURL, "", "x" * 600]
_REFERERS = [None, "", "https://www.news.example/", "ftp://a.example/", "https://b." + "c" * 600]


@given(
    clicks=st.lists(
        st.tuples(
            st.sampled_from(["203.0.113.7", "2001:db8::1", "10.0.0.1"]),
            st.sampled_from(_AGENTS),
            st.sampled_from(_REFERERS),
            st.floats(min_value=0, max_value=3 * 86_400),
        ),
        max_size=30,
    )
)
def test_visits_make_the_clicks_from_request_makes(
    clicks: list[tuple[str, str | None, str | None, float]],
) -> None:
    clock = Clock(datetime(2024, 5, 31, 12, tzinfo=UTC))
    start = clock.now
    salt = DailySalt(clock, lambda size: int(clock.now // 86_400).to_bytes(size, "big"))
    visits = Visits(salt, max_entries=4)
    for link, (ip, agent, referer, offset) in enumerate(clicks):
        # Time only goes forward, across midnights.
        clock.now = max(clock.now, start + offset)
        made = visits.event(
            link,
            clock.now,
            ip,
            None if agent is None else agent.encode("latin-1"),
            None if referer is None else referer.encode("latin-1"),
        )
        expected = from_request(
            link_id=link,
            at=clock.now,
            client_ip=ip,
            user_agent=agent,
            referer=referer,
            salt=salt,
        )
        assert made == expected


def test_a_visitor_is_hashed_anew_when_the_day_turns() -> None:
    clock = Clock(datetime(2024, 5, 31, 23, 59, 59, tzinfo=UTC))
    counter = itertools.count(1)
    salt = DailySalt(clock, lambda size: next(counter).to_bytes(size, "big"))
    visits = Visits(salt)
    agent = CHROME_WINDOWS.encode()
    before = visits.event(1, clock.now, "203.0.113.7", agent, None)
    assert visits.event(1, clock.now, "203.0.113.7", agent, None) == before
    clock.now += 1.0  # 2024-06-01T00:00:00Z
    after = visits.event(1, clock.now, "203.0.113.7", agent, None)
    assert after[VISITOR] != before[VISITOR]
    today = visitor_hash("203.0.113.7", CHROME_WINDOWS, "2024-06-01", salt.entry[2])
    assert after[VISITOR] == today


def test_a_shared_salt_replaces_the_visitors_derived_under_a_made_up_one() -> None:
    clock = Clock(datetime(2024, 5, 31, 12, tzinfo=UTC))
    salt = DailySalt(clock, lambda size: b"m" * size)
    visits = Visits(salt)
    agent = CHROME_WINDOWS.encode()
    made_up = visits.event(1, clock.now, "203.0.113.7", agent, None)
    assert made_up[VISITOR] == visitor_hash("203.0.113.7", CHROME_WINDOWS, "2024-05-31", b"m" * 32)
    salt.share({int(clock.now // 86_400): b"s" * 32})
    shared = visits.event(1, clock.now, "203.0.113.7", agent, None)
    assert shared[VISITOR] == visitor_hash("203.0.113.7", CHROME_WINDOWS, "2024-05-31", b"s" * 32)


def test_visits_keep_no_more_than_their_bound_and_no_long_fields() -> None:
    clock = Clock(datetime(2024, 5, 31, 12, tzinfo=UTC))
    visits = Visits(DailySalt(clock), max_entries=3)
    for n in range(10):
        visits.event(1, clock.now, f"203.0.113.{n}", b"agent", None)
        assert len(visits) <= 3
    before = len(visits)
    visits.event(1, clock.now, "198.51.100.1", b"a" * 513, None)
    visits.event(1, clock.now, "198.51.100.1", b"agent", b"https://x.example/" + b"r" * 600)
    assert len(visits) == before


_text = st.none() | st.text(max_size=20)
_event = st.tuples(
    st.integers(min_value=1, max_value=2**62),
    st.floats(min_value=0, max_value=4e9),
    _text,
    st.text(max_size=20),
    st.text(max_size=20),
    st.sampled_from(["desktop", "mobile", "tablet", "bot", "other"]),
    st.booleans(),
    _text,
    st.text(max_size=16),
    _text,
    _text,
)


@given(st.lists(_event, max_size=5))
def test_a_batch_is_encoded_as_json_writes_it_and_decodes_to_itself(
    events: list[ClickEvent],
) -> None:
    # The click log holds batches json wrote before encode moved to orjson: both texts
    # must read back as the same events (orjson leaves non-ASCII text unescaped, json
    # escapes it). st.text() draws lone surrogates too: they take json's own path.
    text = encode(events)
    assert json.loads(text) == json.loads(json.dumps(events))
    assert decode(text) == decode(json.dumps(events)) == events


def test_an_event_of_an_older_kurz_decodes_with_none_for_the_fields_added_since() -> None:
    # Streamed or logged before `variant` was added: nine fields.
    old = '[[1,0.5,"news.example","Chrome","Linux","desktop",false,"DE","ab"]]'
    assert decode(old) == [
        click_event(
            link_id=1,
            at=0.5,
            referrer_host="news.example",
            browser="Chrome",
            os="Linux",
            device="desktop",
            bot=False,
            country="DE",
            visitor="ab",
        )
    ]


def test_a_lone_surrogate_is_escaped_not_refused() -> None:
    event = click_event(
        link_id=1, at=0.5, referrer_host="\ud800.example", browser="Chrome", os="Linux",
        device="desktop", bot=False, visitor="ab",
    )  # fmt: skip
    assert "\\ud800" in encode([event])
    assert decode(encode([event])) == [event]


def test_events_an_older_kurz_queued_decode_without_a_city() -> None:
    """The stream and the click log hold events of nine fields, from before the city."""
    older = '[[1,0.5,"news.example","Chrome","Linux","desktop",false,"DE","ab"]]'
    assert decode(older) == [
        click_event(
            link_id=1, at=0.5, referrer_host="news.example", browser="Chrome", os="Linux",
            device="desktop", bot=False, country="DE", visitor="ab",
        )
    ]  # fmt: skip
