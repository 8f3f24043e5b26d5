"""kurz's extras (kurz.extras): kurz on SQLite with gRPC off loads none of them, and a
setting that needs one that is missing says which, in one line.

Each test runs Python in a process of its own: what it has imported is the finding,
and an extra is made missing there by blocking its module (sys.modules[name] = None
makes `import name` fail as if it were not installed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

EXTRAS = ("asyncpg", "redis", "hiredis", "grpc", "grpc_health", "grpc_reflection", "google")


def run(code: str, *, blocked: tuple[str, ...] = (), env: dict[str, str] | None = None,
        ) -> subprocess.CompletedProcess[str]:  # fmt: skip
    block = f"import sys\nfor name in {blocked!r}:\n    sys.modules[name] = None\n"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("KURZ_")}
    return subprocess.run(
        [sys.executable, "-c", block + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=clean | (env or {}),
        check=False,
    )


def test_sqlite_without_grpc_serves_loading_no_extra(sqlite_url: str) -> None:
    done = run(
        f"""
        import asyncio, json, sys
        import httpx
        import kurz.cli
        from kurz.app import create_app
        from kurz.bootstrap import build
        from kurz.config import Settings

        app = create_app(build(Settings(database_url={sqlite_url!r}, grpc_port=0)))

        async def main():
            async with app.router.lifespan_context(app):
                transport = httpx.ASGITransport(app=app)
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                    assert (await c.get("/healthz")).status_code == 200
                    assert (await c.get("/nothing-here")).status_code == 404

        asyncio.run(main())
        print(json.dumps(sorted({{m.split(".")[0] for m in sys.modules}})))
        """
    )

    assert done.returncode == 0, done.stderr
    loaded = set(json.loads(done.stdout))
    assert "fastapi" in loaded
    assert loaded & set(EXTRAS) == set()


def test_sqlite_serves_with_every_extra_missing(sqlite_url: str) -> None:
    done = run(
        f"""
        from kurz.app import create_app
        from kurz.bootstrap import build
        from kurz.config import Settings

        parts = build(Settings(database_url={sqlite_url!r}))
        create_app(parts)
        print(parts.settings.grpc_port)
        """,
        blocked=EXTRAS,
    )

    assert done.returncode == 0, done.stderr
    # On by default, gRPC is off when kurz[grpc] is missing, and the log says so.
    assert done.stdout == "0\n"


def test_postgresql_without_asyncpg_names_the_extra() -> None:
    done = run(
        "from kurz.cli import main\nsys.argv = ['kurz', 'migrate']\nmain()",
        blocked=("asyncpg",),
        env={"KURZ_DATABASE_URL": "postgresql://kurz@127.0.0.1:5432/kurz"},
    )

    assert done.returncode == 1
    assert done.stderr == "error: KURZ_DATABASE_URL is PostgreSQL: install kurz[postgres]\n"
    assert done.stdout == ""


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("KURZ_REDIS_URL", "redis://127.0.0.1:6379/0", "KURZ_REDIS_URL is set"),
        ("KURZ_CACHE_NODES", "redis://127.0.0.1:6379/1", "KURZ_CACHE_NODES is set"),
    ],
)
def test_redis_settings_without_redis_name_the_extra(
    sqlite_url: str, variable: str, value: str, message: str
) -> None:
    done = run(
        "from kurz.cli import main\nsys.argv = ['kurz', 'import', 'status', '1']\nmain()",
        blocked=("redis", "hiredis"),
        env={"KURZ_DATABASE_URL": sqlite_url, variable: value},
    )

    assert done.returncode == 1
    assert done.stderr == f"error: {message}: install kurz[redis]\n"


@pytest.mark.parametrize("missing", ["grpc", "grpc_health", "grpc_reflection", "google"])
def test_a_grpc_port_asked_for_without_grpc_names_the_extra(sqlite_url: str, missing: str) -> None:
    done = run(
        f"""
        from kurz.bootstrap import build
        from kurz.config import Settings
        from kurz.extras import MissingExtra

        try:
            build(Settings(database_url={sqlite_url!r}))
        except MissingExtra as exc:
            print(exc)
        """,
        blocked=(missing,),
        env={"KURZ_GRPC_PORT": "50099"},
    )

    assert done.returncode == 0, done.stderr
    assert done.stdout == "KURZ_GRPC_PORT is 50099: install kurz[grpc]\n"
