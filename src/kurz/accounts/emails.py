"""Email addresses as kurz keeps them: one spelling per address, so that the unique
index compares them case-insensitively and a sign-in finds its row."""

from __future__ import annotations

import unicodedata

import idna

# RFC 5321: a path is at most 256 octets, so an address at most 254.
MAX_LENGTH = 254
_LOCAL_MAX = 64


def normalise(text: str) -> str:
    """`text` as stored: trimmed, NFC, lower-cased, its domain in ASCII (IDNA).

    Raises ValueError, with a message a 422 can show, for what is not an address:
    kurz sends no mail, so it checks the shape only, not that the address exists.
    Lower-casing the local part is what every peer and most mail hosts do, though
    RFC 5321 leaves it to the host: two people whose addresses differ only in case
    cannot both have an account.
    """
    address = unicodedata.normalize("NFC", text.strip()).lower()
    if not address:
        raise ValueError("An email address is required.")
    if len(address) > MAX_LENGTH:
        raise ValueError(f"An email address has at most {MAX_LENGTH} characters.")
    if any(ch.isspace() or unicodedata.category(ch).startswith("C") for ch in address):
        raise ValueError("An email address has no spaces or control characters.")
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise ValueError("An email address looks like name@example.com.")
    if len(local) > _LOCAL_MAX or '"' in local or "@" in local:
        raise ValueError("The part before the @ is at most 64 characters, without @ or quotes.")
    if domain.startswith(".") or domain.endswith(".") or ".." in domain or "." not in domain:
        raise ValueError("The part after the @ is a domain name, like example.com.")
    try:
        ascii_domain = idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError:
        raise ValueError("The part after the @ is not a valid domain name.") from None
    address = f"{local}@{ascii_domain}"
    if len(address) > MAX_LENGTH:
        raise ValueError(f"An email address has at most {MAX_LENGTH} characters.")
    return address
