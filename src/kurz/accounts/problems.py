"""The refusals of the users use cases (docs/problems.md lists them)."""

from __future__ import annotations

from kurz.accounts.models import LinksFate
from kurz.errors import Problem, invalid

_EXPIRED = "This link has expired, was used already, or never existed."


def link_expired(detail: str = _EXPIRED) -> Problem:
    # One answer for unknown, used and expired tokens: telling them apart would tell a
    # guesser which tokens exist.
    return Problem(410, "link-expired", "Link Expired", detail)


def email_taken(email: str) -> Problem:
    return Problem(
        409,
        "email-taken",
        "Email Taken",
        f"A user with the email address {email} exists already.",
        errors=[{"field": "email", "in": "body", "message": "An account has this address."}],
    )


def last_admin() -> Problem:
    return Problem(
        409,
        "last-admin",
        "Last Admin",
        "This is the last enabled admin: make another admin first, so that someone can "
        "still manage kurz.",
    )


def cannot_delete_self() -> Problem:
    return Problem(
        409,
        "cannot-delete-self",
        "Cannot Delete Self",
        "An admin cannot delete their own account; another admin can.",
    )


def check_fate(user_id: int, fate: LinksFate | None, to: int | None) -> None:
    """The 422s for a delete that does not say, or says wrongly, where the links go."""
    if fate is None:
        raise invalid(
            "links",
            "Say what happens to the user's links: `links=reassign&to={user id}` gives "
            "them to another user, `links=delete` deletes them.",
            location="query",
        )
    if fate == "reassign" and to is None:
        raise invalid(
            "to",
            "`links=reassign` needs `to`, the id of the user who gets the links.",
            location="query",
        )
    if fate == "delete" and to is not None:
        raise invalid("to", "`to` goes with `links=reassign` only.", location="query")
    if to == user_id:
        raise invalid("to", "The links go to another user than the one deleted.", location="query")
