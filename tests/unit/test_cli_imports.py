"""What starting kurz imports: `kurz --help` loads none of the libraries its commands
use, and a server starting on a current SQLite database loads neither Alembic nor
httpx (docs/benchmarks.md, "Start-up", has the CPU they cost).

The figures themselves are a benchmark's (`make bench-startup`), never a test's: these
tests hold what the figures rest on. Each runs Python in a process of its own, since
what it has imported is the finding."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

# Loaded by a command when it runs, never by `kurz --help` or `kurz --version`.
COMMANDS_ONLY = (
    "sqlalchemy",
    "alembic",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "jinja2",
    "pydantic_settings",
    "rich.progress",
    "kurz.db",
    "kurz.bootstrap",
    "kurz.app",
)
# Loaded when something needs them, not by a start on a current schema.
NOT_AT_START = ("alembic", "httpx", "rich.progress")


def loaded_after(code: str) -> set[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KURZ_")}
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code) + "\nprint(json.dumps(sorted(sys.modules)))"],
        capture_output=True,
        text=True,
        env=clean,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.parametrize("option", ["--help", "--version"])
def test_help_and_version_import_no_command_s_libraries(option: str) -> None:
    loaded = loaded_after(
        f"""
        import json, sys
        sys.argv = ["kurz", {option!r}]
        from kurz.entry import main
        try:
            main()
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        """
    )

    assert "typer" in loaded
    assert loaded & set(COMMANDS_ONLY) == set()


def test_a_start_on_a_current_sqlite_schema_imports_what_it_needs_only(sqlite_url: str) -> None:
    # sqlite_url is migrated already: the start only checks its revision.
    loaded = loaded_after(
        f"""
        import asyncio, json, sys
        import kurz.cli
        from kurz.app import create_app
        from kurz.bootstrap import build
        from kurz.config import Settings

        app = create_app(build(Settings(database_url={sqlite_url!r}, grpc_port=0)))
        answers = []

        async def receive():
            return {{"type": "http.request", "body": b"", "more_body": False}}

        async def send(message):
            answers.append(message)

        async def main():
            async with app.router.lifespan_context(app):
                scope = {{
                    "type": "http", "asgi": {{"version": "3.0"}}, "http_version": "1.1",
                    "method": "GET", "scheme": "http", "path": "/healthz", "raw_path": b"/healthz",
                    "query_string": b"", "root_path": "", "headers": [(b"host", b"t")],
                    "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
                }}
                await app(scope, receive, send)
            assert answers[0]["status"] == 200, answers

        asyncio.run(main())
        """
    )

    # ua-parser too: this process records clicks, and its recorder loads the parser at
    # start rather than in its first batch (kurz.agents.Classifier.prepare).
    assert {"fastapi", "sqlalchemy", "kurz.app", "ua_parser"} <= loaded
    assert loaded & set(NOT_AT_START) == set()
