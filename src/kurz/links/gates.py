"""The pipeline's gates after the time window: link-preview bots, then the password.

A bot that unfurls a link must neither use up a visit nor see what a cap or a password
guards; a visitor must give the link's password before anything tells the target.
docs/passwords-and-bots.md has the policy; docs/decisions/0017 the reasons.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kurz.errors import Problem
from kurz.links.unfurlers import unfurler

if TYPE_CHECKING:
    from kurz.links.target import Target

# RFC 9110 11.6.1: a 401 names the scheme that answers it; this one is kurz's own
# (POST the form field `password` to the link's address), as no registered one fits.
CHALLENGE = {"WWW-Authenticate": 'LinkPassword realm="kurz"'}


def password_required() -> Problem:
    return Problem(
        401,
        "link-password-required",
        "Password required",
        "This short link is protected by a password.",
        headers=CHALLENGE,
    )


def wrong_password() -> Problem:
    return Problem(
        401,
        "link-password-wrong",
        "Wrong password",
        "The password is not this short link's.",
        headers=CHALLENGE,
    )


def previews(target: Target, user_agent: str | None) -> bool:
    """Whether the visitor is a link-preview bot to be shown the link's preview page
    instead: for a capped or password link always, for another only when it has
    preview fields of its own (otherwise the bot follows the redirect, as today)."""
    return target.screened and unfurler(user_agent) is not None
