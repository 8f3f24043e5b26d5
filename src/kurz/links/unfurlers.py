"""Link-preview bots (unfurlers): the agents that fetch a link when it is pasted, not
when a person follows it. docs/passwords-and-bots.md says what kurz answers them.

A person never sends these tokens, so matching them is safe in the one direction that
matters: a visitor taken for an unfurler gets a preview page instead of a redirect,
never the other way round. Crawlers that index the web are not here: they follow
links as a person would, and analytics counts them as bots (kurz.analytics.events).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Unfurler:
    """One preview bot: who runs it, the token its User-Agent carries, where that is
    documented (or seen)."""

    name: str
    token: str
    source: str


UNFURLERS: tuple[Unfurler, ...] = (
    Unfurler("Slack", "Slackbot", "https://api.slack.com/robots"),
    Unfurler("Slack images", "Slack-ImgProxy", "https://api.slack.com/robots"),
    Unfurler("X (Twitter)", "Twitterbot", "https://developer.x.com/en/docs/x-for-websites/cards/guides/getting-started"),
    Unfurler("Facebook, Messenger", "facebookexternalhit", "https://developers.facebook.com/docs/sharing/webmasters/web-crawlers/"),
    Unfurler("Facebook", "Facebot", "https://developers.facebook.com/docs/sharing/webmasters/web-crawlers/"),
    Unfurler("LinkedIn", "LinkedInBot", "https://www.linkedin.com/help/linkedin/answer/a521928"),
    Unfurler("Discord", "Discordbot", "https://discord.com/developers/docs/resources/message#embed-object"),
    Unfurler("WhatsApp", "WhatsApp", "https://developers.facebook.com/docs/whatsapp/link-previews/"),
    Unfurler("Microsoft Teams, Skype", "SkypeUriPreview", "https://learn.microsoft.com/en-us/microsoftteams/platform/messaging-extensions/how-to/link-unfurling"),
    Unfurler("Microsoft Teams, Outlook", "MicrosoftPreview", "https://learn.microsoft.com/en-us/microsoftteams/platform/messaging-extensions/how-to/link-unfurling"),
    Unfurler("Telegram", "TelegramBot", "https://core.telegram.org/bots/webapps"),
    Unfurler("Outlook, Office 365 link checks", "Microsoft Office", "https://learn.microsoft.com/en-us/defender-office-365/safe-links-about"),
    Unfurler("Outlook.com previews", "OutlookLinkPreview", "https://learn.microsoft.com/en-us/outlook/"),
    Unfurler("Google (chat, mail proxies)", "Google-PageRenderer", "https://developers.google.com/search/docs/crawling-indexing/google-special-case-crawlers"),
    Unfurler("Mattermost", "Mattermost-Bot", "https://docs.mattermost.com/configure/site-configuration-settings.html#enable-link-previews"),
    Unfurler("Mastodon", "Mastodon", "https://docs.joinmastodon.org/spec/activitypub/"),
    Unfurler("Bluesky", "Bluesky Cardyb", "https://github.com/bluesky-social/social-app/tree/main/bskyweb"),
    Unfurler("Embedly (Reddit, Medium)", "Embedly", "https://docs.embed.ly/"),
    Unfurler("Iframely", "Iframely", "https://iframely.com/docs/about"),
    Unfurler("Barracuda, Proofpoint and other mail scanners", "Barracuda", "https://campus.barracuda.com/product/emailgatewaydefense/doc/96023036/link-protection/"),
    Unfurler("Proofpoint URL Defense", "Proofpoint", "https://www.proofpoint.com/us/products/threat-defense/url-defense"),
)  # fmt: skip

# One search over every token, case-insensitive (tokens are spelled as their owners
# spell them, but clients differ: "WhatsApp/2.23" and "whatsapp").
_TOKENS = re.compile("|".join(re.escape(u.token) for u in UNFURLERS), re.IGNORECASE)
_NAMES = {u.token.lower(): u.name for u in UNFURLERS}


def unfurler(user_agent: str | None) -> str | None:
    """The preview bot `user_agent` names (UNFURLERS' `name`), or None: a visitor."""
    if not user_agent:
        return None
    found = _TOKENS.search(user_agent)
    return None if found is None else _NAMES[found.group().lower()]
