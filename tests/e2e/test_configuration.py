"""Configuring kurz as an operator does, through real processes: a misspelt variable is
named, a missing database is refused rather than made, `kurz migrate` says what it did,
and a database or a port kurz cannot use is one line on stderr."""

from __future__ import annotations

import socket
import uuid
from pathlib import Path

from sqlalchemy.engine import make_url

from kurz.db.migrate import head_revisions, known_revisions
from tests.e2e.support import kurz_env, run
from tests.support import free_port

MISSING = "(run kurz migrate, or set KURZ_DATA_DIR / KURZ_DATABASE_URL)"


def test_a_misspelt_variable_is_a_warning_naming_the_setting(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("KURZ_LOG_LEVLE=debug\n")
    said = run(["keys", "list"], kurz_env(KURZ_DATABSE_URL="sqlite:///x.db"), tmp_path)
    assert said.stderr.splitlines()[:2] == [
        "warning: KURZ_DATABSE_URL is not a kurz setting; did you mean KURZ_DATABASE_URL?",
        "warning: KURZ_LOG_LEVLE is not a kurz setting; did you mean KURZ_LOG_LEVEL?",
    ]


def test_admin_commands_refuse_a_database_that_does_not_exist(tmp_path: Path) -> None:
    (tmp_path / "links.csv").write_text("url\nhttps://example.com/\n")
    for command in (["keys", "create", "--name", "ops"], ["users", "list"], ["jobs", "list"],
                    ["domains", "list"], ["export"], ["import", "csv", "links.csv"]):  # fmt: skip
        said = run(command, kurz_env(), tmp_path)
        assert (said.returncode, said.stdout) == (2, ""), command
        assert said.stderr == f"error: no kurz database at {tmp_path}/var/kurz.db {MISSING}\n"
    assert [path.name for path in tmp_path.iterdir()] == ["links.csv"]
    elsewhere = tmp_path / "data"
    said = run(["keys", "list"], kurz_env(KURZ_DATA_DIR=str(elsewhere)), tmp_path)
    assert said.stderr == f"error: no kurz database at {elsewhere}/kurz.db {MISSING}\n"


def test_migrate_makes_the_database_and_says_what_it_applied(tmp_path: Path) -> None:
    env = kurz_env()
    first = run(["migrate"], env, tmp_path)
    revisions = sorted(known_revisions())
    assert (first.returncode, first.stderr) == (0, f"applied {revisions[0]} … {revisions[-1]}\n")
    assert (tmp_path / "var" / "kurz.db").is_file()
    again = run(["migrate"], env, tmp_path)
    assert (again.returncode, again.stderr) == (0, f"already at {min(head_revisions())}\n")
    made = run(["keys", "create", "--name", "ops"], env, tmp_path)
    assert made.returncode == 0, made.stderr


def test_migrate_makes_no_directory_that_kurz_database_url_names(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/typo/kurz.db"
    said = run(["migrate"], kurz_env(KURZ_DATABASE_URL=url), tmp_path)
    assert (said.returncode, said.stderr) == (
        2,
        f"error: the directory {tmp_path}/typo does not exist: create it, or fix "
        "KURZ_DATABASE_URL\n",
    )
    assert not (tmp_path / "typo").exists()
    # KURZ_DATA_DIR is made, one level: its parent must exist.
    data = tmp_path / "data"
    made = run(["migrate"], kurz_env(KURZ_DATA_DIR=str(data)), tmp_path)
    assert made.returncode == 0, made.stderr
    assert (data / "kurz.db").is_file()
    deeper = run(["migrate"], kurz_env(KURZ_DATA_DIR=str(tmp_path / "a" / "b")), tmp_path)
    assert deeper.returncode == 2
    assert deeper.stderr.startswith(f"error: cannot make KURZ_DATA_DIR {tmp_path}/a/b:")


def test_a_postgresql_database_that_does_not_exist_is_one_line(
    tmp_path: Path, postgres_url: str
) -> None:
    name = f"kurz_none_{uuid.uuid4().hex[:12]}"
    url = make_url(postgres_url).set(database=name)
    env = kurz_env(KURZ_DATABASE_URL=url.render_as_string(hide_password=False))
    where = f"{url.host}:{url.port or 5432}"
    for command in (["migrate"], ["keys", "list"], ["serve"]):
        said = run(command, env, tmp_path)
        assert (said.returncode, said.stderr) == (
            1,
            f'error: database "{name}" does not exist on {where}: create it (createdb {name}) '
            "or fix KURZ_DATABASE_URL\n",
        ), command


def test_a_postgresql_server_that_does_not_answer_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    env = kurz_env(KURZ_DATABASE_URL=f"postgresql://kurz@127.0.0.1:{port}/kurz")
    said = run(["migrate"], env, tmp_path)
    assert (said.returncode, said.stderr) == (
        1,
        f"error: cannot connect to PostgreSQL on 127.0.0.1:{port}: connection refused "
        "(is it running? check KURZ_DATABASE_URL)\n",
    )


def test_a_taken_http_port_stops_serve_before_it_says_it_serves(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = kurz_env(KURZ_PORT=str(port), KURZ_GRPC_PORT="0", KURZ_LOG_FORMAT="json")
        said = run(["serve"], env, tmp_path)
    assert said.returncode == 1
    assert "kurz serving on" not in said.stderr
    assert said.stderr.splitlines()[-1] == (
        f"error: cannot serve HTTP on 127.0.0.1:{port}: the port is in use "
        "(set KURZ_PORT to another port)"
    )


def test_listening_on_every_address_without_a_base_url_is_refused(tmp_path: Path) -> None:
    said = run(["serve"], kurz_env(KURZ_HOST="0.0.0.0"), tmp_path)  # noqa: S104
    assert (said.returncode, said.stderr) == (
        1,
        "error: bad configuration: KURZ_HOST=0.0.0.0 listens on every address, so short "
        "URLs would be http://0.0.0.0:8080/...: set KURZ_BASE_URL to the public origin "
        "(e.g. https://s.example)\n",
    )
    assert list(tmp_path.iterdir()) == []
