"""Users from a shell and across processes: `kurz users create / list / reset-link`,
`kurz serve`'s first run (the setup link it prints, KURZ_INITIAL_ADMIN_*), and a user
disabled through one kurz process refused by another sharing its database."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.support import KURZ, PATIENCE, Server, kurz_env, new_key, run
from tests.integration.auth.people import PASSWORD

SETUP_LINE = re.compile(
    r"Open (http://127\.0\.0\.1:\d+/_/setup/[A-Za-z0-9_-]{43}) within an hour to create "
    r"the first admin\."
)


def users(
    args: list[str], env: dict[str, str], cwd: Path, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`kurz users ...`, with `stdin` as its input (or none at all: not a terminal)."""
    return subprocess.run(
        [KURZ, "users", *args],
        env=env,
        cwd=cwd,
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=PATIENCE,
        check=False,
    )


def refused(done: subprocess.CompletedProcess[str], says: str) -> None:
    assert done.returncode == 1, done.stdout + done.stderr
    assert says in done.stderr
    assert "Traceback" not in done.stderr


def test_users_are_made_listed_and_given_reset_links_from_a_shell(tmp_path: Path) -> None:
    env = kurz_env()
    assert run(["migrate"], env, tmp_path).returncode == 0
    made = users(
        ["create", "--email", " Ada@Example.com", "--admin", "--name", "Ada", "--password-stdin"],
        env,
        tmp_path,
        stdin=PASSWORD + "\n",
    )
    assert made.returncode == 0, made.stderr
    assert "created admin ada@example.com" in made.stderr
    assert made.stdout == ""
    again = ["create", "--email", "ada@example.com", "--password-stdin"]
    refused(users(again, env, tmp_path, PASSWORD), "ada@example.com exists already")
    short = ["create", "--email", "bob@example.com", "--password-stdin"]
    refused(users(short, env, tmp_path, "short\n"), "at least 8 characters")
    bad = ["create", "--email", "bob", "--password-stdin"]
    refused(users(bad, env, tmp_path, PASSWORD), "email: An email address looks like")
    refused(users(["create", "--email", "bob@example.com"], env, tmp_path), "--password-stdin")

    listed = users(["list"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "ada@example.com" in listed.stdout
    assert "bob@example.com" not in listed.stdout

    link = users(["reset-link", "--email", "ADA@example.com"], env, tmp_path)
    assert link.returncode == 0, link.stderr
    assert re.fullmatch(r"http://127\.0\.0\.1:8080/_/reset/[A-Za-z0-9_-]{43}\n", link.stdout)
    refused(users(["reset-link", "--email", "nobody@example.com"], env, tmp_path), "No user")


def test_users_create_asks_twice_on_a_terminal(tmp_path: Path) -> None:
    assert run(["migrate"], kurz_env(), tmp_path).returncode == 0
    primary, secondary = pty.openpty()
    # A session of its own, with the pty as stdin: getpass reads it with echo off.
    proc = subprocess.Popen(
        [KURZ, "users", "create", "--email", "tty@example.com"],
        env=kurz_env(),
        cwd=tmp_path,
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        start_new_session=True,
    )
    os.close(secondary)
    seen = b""
    try:
        for prompt in (b"Password: ", b"Repeat for confirmation: "):
            seen = _read_until(primary, prompt, seen)
            os.write(primary, PASSWORD.encode() + b"\n")
        seen = _read_until(primary, b"created member tty@example.com", seen)
        assert proc.wait(timeout=PATIENCE) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(primary)
    assert PASSWORD.encode() not in seen


def _read_until(fd: int, wanted: bytes, seen: bytes) -> bytes:
    deadline = time.monotonic() + PATIENCE
    while wanted not in seen:
        assert time.monotonic() < deadline, seen
        ready, _, _ = select.select([fd], [], [], 1.0)
        if ready:
            try:
                seen += os.read(fd, 1024)
            except OSError:  # the child closed the terminal
                break
    assert wanted in seen, seen
    return seen.split(wanted, 1)[1]


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[list[Server]]:
    """Servers a test starts (appended to this list), stopped at its end."""
    servers: list[Server] = []
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def start(servers: list[Server], cwd: Path, env: dict[str, str]) -> Server:
    server = Server(cwd, env)
    servers.append(server)
    server.wait_ready()
    return server


def test_serve_prints_a_setup_link_once_per_start_until_an_admin_can_sign_in(
    tmp_path: Path, serving: list[Server]
) -> None:
    server = start(serving, tmp_path, kurz_env())
    [url] = SETUP_LINE.findall(server.output())
    assert url.startswith(server.url + "/_/setup/")
    with httpx.Client() as http:
        assert http.get(url).status_code == 200
        form = {"email": "first@example.com", "password": PASSWORD, "password_again": PASSWORD}
        made = http.post(url, data=form)
        assert made.status_code == 200
        assert "first@example.com" in made.text
    server.stop()
    again = start(serving, tmp_path, kurz_env())
    assert "/_/setup/" not in again.output()


def test_serve_makes_the_initial_admin_from_its_settings(
    tmp_path: Path, serving: list[Server]
) -> None:
    secret = tmp_path / "admin-password"
    env = kurz_env(
        KURZ_INITIAL_ADMIN_EMAIL="ops@example.com",
        KURZ_INITIAL_ADMIN_PASSWORD_FILE=str(secret),
    )
    refused(run(["serve"], env, tmp_path), "KURZ_INITIAL_ADMIN_PASSWORD_FILE: cannot read")
    secret.write_text("short\n")
    refused(run(["serve"], env, tmp_path), "at least 8 characters")
    secret.write_text(PASSWORD + "\n")
    server = start(serving, tmp_path, env)
    assert "/_/setup/" not in server.output()
    assert "made the initial admin ops@example.com" in server.output()
    listed = users(["list"], env, tmp_path)
    assert re.search(r"ops@example\.com.*admin.*yes", listed.stdout), listed.stdout


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_user_disabled_through_one_process_is_refused_by_another(
    tmp_path: Path, serving: list[Server], request: pytest.FixtureRequest, backend: str
) -> None:
    """Two kurz processes on one database: process A disables a user, and the user's key
    and signed-in session both get 401 from process B on their next request."""
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    if backend == "postgresql":
        url = request.getfixturevalue("postgres_url")
    env = kurz_env(KURZ_DATABASE_URL=url)
    a = start(serving, tmp_path, env)
    b = start(serving, tmp_path, env)
    admin_key = new_key(env, tmp_path, "ops", admin=True)
    made = users(["create", "--email", "dora@example.com", "--password-stdin"], env, tmp_path,
                 stdin=PASSWORD + "\n")  # fmt: skip
    assert made.returncode == 0, made.stderr
    keyed = run(["keys", "create", "--name", "dora", "--user", "dora@example.com"], env, tmp_path)
    assert keyed.returncode == 0, keyed.stderr
    dora_at_b = {"Authorization": f"Bearer {keyed.stdout.strip()}"}
    with (
        httpx.Client(headers={"Authorization": f"Bearer {admin_key}"}) as admin,
        httpx.Client() as browser,
    ):
        signed = browser.post(
            f"{b.url}/api/v1/session", json={"email": "dora@example.com", "password": PASSWORD}
        )
        assert signed.status_code == 204, signed.text
        listed = admin.get(f"{a.url}/api/v1/users").json()["items"]
        [dora] = [user["id"] for user in listed if user["email"] == "dora@example.com"]
        assert httpx.get(f"{b.url}/api/v1/links", headers=dora_at_b).status_code == 200
        assert browser.get(f"{b.url}/api/v1/links").status_code == 200

        disabled = admin.patch(f"{a.url}/api/v1/users/{dora}", json={"disabled": True})
        assert disabled.status_code == 200, disabled.text
        refused_at_b = httpx.get(f"{b.url}/api/v1/links", headers=dora_at_b)
        assert refused_at_b.status_code == 401
        assert refused_at_b.json()["detail"] == "The API key's user is disabled."
        assert browser.get(f"{b.url}/api/v1/links").status_code == 401

        # Enabled again: the key works, the session stays ended (disabling ended it).
        admin.patch(f"{a.url}/api/v1/users/{dora}", json={"disabled": False})
        assert httpx.get(f"{b.url}/api/v1/links", headers=dora_at_b).status_code == 200
        assert browser.get(f"{b.url}/api/v1/links").status_code == 401
