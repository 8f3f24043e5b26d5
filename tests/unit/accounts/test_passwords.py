"""kurz.accounts.Passwords: Argon2id round trips, refusals that never raise, rehashing,
the unknown user that costs what a wrong password costs, and the new-password bounds."""

from __future__ import annotations

import asyncio
import threading

import pytest

from kurz.accounts import MAX_LENGTH, MIN_LENGTH, Cost, Passwords, check_new

# Argon2's smallest parameters, so that the tests stay fast.
CHEAP = Cost(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture
def passwords() -> Passwords:
    return Passwords(CHEAP)


def test_the_defaults_are_owasps() -> None:
    assert Cost() == Cost(time_cost=2, memory_cost=19456, parallelism=1)
    passwords = Passwords()
    stored = passwords.hash("correct horse battery staple")
    assert stored.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert passwords.verify(stored, "correct horse battery staple")


def test_a_hash_verifies_its_password_and_is_salted(passwords: Passwords) -> None:
    first = passwords.hash("correct horse battery staple")
    second = passwords.hash("correct horse battery staple")
    assert first.startswith("$argon2id$")
    assert first != second
    assert passwords.verify(first, "correct horse battery staple")
    assert passwords.verify(second, "correct horse battery staple")


def test_a_wrong_password_is_false(passwords: Passwords) -> None:
    stored = passwords.hash("correct horse battery staple")
    assert not passwords.verify(stored, "correct horse battery stapler")
    assert not passwords.verify(stored, "")
    assert not passwords.verify(stored, "\ud800")  # no UTF-8 form


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "not a hash",
        "$argon2id$",
        "$argon2id$v=19$m=abc,t=2,p=1$c2FsdA$aGFzaA",
        "$argon2id$v=19$m=8,t=1,p=1$AAAA$BBBB",
        "$2b$12$abcdefghijklmnopqrstuu",  # a bcrypt hash
        "$argon2id$v=19$m=8,t=1,p=1$é$é",
    ],
)
def test_a_malformed_stored_hash_is_false_and_needs_a_rehash(
    passwords: Passwords, stored: str
) -> None:
    assert not passwords.verify(stored, "correct horse battery staple")
    assert not passwords.verify_user(stored, "correct horse battery staple")
    assert passwords.needs_rehash(stored)


def test_a_hash_needs_a_rehash_only_when_the_parameters_change(passwords: Passwords) -> None:
    stored = passwords.hash("correct horse battery staple")
    assert not passwords.needs_rehash(stored)
    assert not Passwords(CHEAP).needs_rehash(stored)
    for changed in (
        Cost(time_cost=2, memory_cost=8, parallelism=1),
        Cost(time_cost=1, memory_cost=16, parallelism=1),
        Cost(time_cost=1, memory_cost=16, parallelism=2),
    ):
        stronger = Passwords(changed)
        assert stronger.needs_rehash(stored)
        # The old hash still verifies, so a sign-in can rehash it.
        assert stronger.verify(stored, "correct horse battery staple")
        assert not stronger.needs_rehash(stronger.hash("correct horse battery staple"))


def test_an_unknown_user_costs_what_a_wrong_password_costs(passwords: Passwords) -> None:
    stored = passwords.hash("correct horse battery staple")

    before = passwords.work
    assert not passwords.verify_user(stored, "wrong password")
    wrong = passwords.work - before

    before = passwords.work
    assert not passwords.verify_user(None, "wrong password")
    unknown = passwords.work - before

    assert wrong == unknown == 1


def test_an_unknown_user_is_false_whatever_the_password(passwords: Passwords) -> None:
    for password in ("", "correct horse battery staple", "x" * MAX_LENGTH):
        assert not passwords.verify_user(None, password)


def test_the_dummy_hash_is_made_once_with_the_same_parameters() -> None:
    passwords = Passwords(CHEAP)
    assert passwords.work == 1  # the dummy hash
    passwords.verify_user(None, "a")
    passwords.verify_user(None, "b")
    assert passwords.work == 3
    assert not passwords.needs_rehash(passwords._dummy)


@pytest.mark.parametrize(
    "password",
    ["x" * MIN_LENGTH, "x" * MAX_LENGTH, "pässwörd", "🔑" * MIN_LENGTH, " " * MIN_LENGTH],
)
def test_a_new_password_within_the_bounds_is_taken_as_it_is(password: str) -> None:
    check_new(password)


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "at least 8 characters"),
        ("x" * (MIN_LENGTH - 1), "at least 8 characters"),
        ("x" * (MAX_LENGTH + 1), "at most 1024 characters"),
        ("x" * 7 + "\ud800", "lone surrogates"),
    ],
)
def test_a_new_password_out_of_bounds_is_refused(password: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_new(password)


async def test_the_async_variants_round_trip(passwords: Passwords) -> None:
    stored = await passwords.ahash("correct horse battery staple")
    assert await passwords.averify_user(stored, "correct horse battery staple")
    assert not await passwords.averify_user(stored, "wrong password")
    assert not await passwords.averify_user(None, "correct horse battery staple")


class ThreadRecording(Passwords):
    """Passwords that note which thread each Argon2 call runs in."""

    def __init__(self, cost: Cost) -> None:
        self.threads: list[int] = []
        super().__init__(cost)

    def hash(self, password: str) -> str:
        self.threads.append(threading.get_ident())
        return super().hash(password)

    def verify(self, stored_hash: str, password: str) -> bool:
        self.threads.append(threading.get_ident())
        return super().verify(stored_hash, password)


async def test_the_async_variants_hash_off_the_event_loop() -> None:
    passwords = ThreadRecording(CHEAP)
    passwords.threads.clear()
    stored = await passwords.ahash("correct horse battery staple")
    await passwords.averify_user(stored, "correct horse battery staple")
    await passwords.averify_user(None, "correct horse battery staple")
    assert len(passwords.threads) == 3
    assert threading.get_ident() not in passwords.threads


async def test_concurrent_hashes_count_every_call(passwords: Passwords) -> None:
    before = passwords.work
    await asyncio.gather(*(passwords.averify_user(None, str(n)) for n in range(20)))
    assert passwords.work - before == 20
