"""The link-preview bots kurz knows, by the User-Agent each sends; people's browsers
are never taken for one."""

from __future__ import annotations

import pytest

from kurz.links.unfurlers import UNFURLERS, unfurler

# As each sends it (from its owner's page or seen in access logs).
SEEN = {
    "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)": "Slack",
    "Slack-ImgProxy (+https://api.slack.com/robots)": "Slack images",
    "Twitterbot/1.0": "X (Twitter)",
    "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)": (
        "Facebook, Messenger"
    ),
    "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)": (
        "LinkedIn"
    ),
    "Mozilla/5.0 (compatible; Discordbot/2.0; +https://discordapp.com)": "Discord",
    "WhatsApp/2.23.20.0 A": "WhatsApp",
    "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5": "Microsoft Teams, Skype",
    "TelegramBot (like TwitterBot)": "Telegram",
    "Mozilla/5.0 (compatible; MicrosoftPreview/2.0; +https://aka.ms/MicrosoftPreview)": (
        "Microsoft Teams, Outlook"
    ),
}
PEOPLE = [
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
    "curl/8.5.0",
    "",
]


@pytest.mark.parametrize(("agent", "name"), SEEN.items())
def test_each_preview_bot_is_known_by_its_agent(agent: str, name: str) -> None:
    assert unfurler(agent) == name


@pytest.mark.parametrize("agent", PEOPLE)
def test_browsers_and_tools_are_not_preview_bots(agent: str) -> None:
    assert unfurler(agent) is None
    assert unfurler(None) is None


def test_every_entry_is_found_by_its_own_token_in_any_case() -> None:
    for entry in UNFURLERS:
        assert entry.source.startswith("https://")
        assert unfurler(f"x {entry.token.upper()} y") == entry.name
