"""Accounts: the people who sign in, and how their passwords are kept.

Depends on nothing else in kurz.
"""

from kurz.accounts.passwords import MAX_LENGTH, MIN_LENGTH, Cost, Passwords, check_new

__all__ = [
    "MAX_LENGTH",
    "MIN_LENGTH",
    "Cost",
    "Passwords",
    "check_new",
]
