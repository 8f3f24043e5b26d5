"""The Dockerfile and the compose files (deploy/) against the code they run: what can be
checked without a container runtime (docs/deploy.md says what was run in one)."""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from kurz import health
from kurz.cli import app
from kurz.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
EMBEDDED = ROOT / "deploy" / "compose.yaml"
SCALED = ROOT / "deploy" / "compose.scaled.yaml"
FILES = (DOCKERFILE, EMBEDDED, SCALED, ROOT / "deploy" / "build-local-base.sh")

# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}: compose's interpolation.
_INTERPOLATION = re.compile(r"\$\{(\w+)(?:(:?-)([^}]*)|(:?\?)[^}]*)?\}")


def _interpolated(text: str) -> str:
    """A compose value as compose reads it with none of its variables set."""

    def value(match: re.Match[str]) -> str:
        if match.group(4):
            raise AssertionError(f"{match.group(1)} is required: the file does not run as it is")
        return match.group(3) or ""

    return _INTERPOLATION.sub(value, text)


def _compose(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _dockerfile_env() -> dict[str, str]:
    """The image's ENV, the instructions' continuation lines joined."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            for word in shlex.split(line.removeprefix("ENV ")):
                name, _, value = word.partition("=")
                env[name] = value
    return env


def _container_settings(
    monkeypatch: pytest.MonkeyPatch,
    workdir: Path,
    service: dict[str, Any],
    image_env: dict[str, str],
) -> Settings:
    """The Settings a container of `service` starts with: the image's ENV, then the
    service's environment, in an environment with no other KURZ_* variable."""
    # A folder with no .env, as the image's working directory (/data) starts.
    monkeypatch.chdir(workdir)
    for name in [name for name in os.environ if name.startswith("KURZ_")]:
        monkeypatch.delenv(name)
    # A variable without a value is passed from the shell that runs compose: unset here.
    given = {k: str(v) for k, v in service["environment"].items() if v is not None}
    for name, value in {**image_env, **given}.items():
        if name.startswith("KURZ_"):
            monkeypatch.setenv(name, _interpolated(value))
    return Settings()


@pytest.mark.parametrize("path", FILES, ids=lambda path: path.name)
def test_every_kurz_variable_named_is_a_setting(path: Path) -> None:
    named = set(re.findall(r"\bKURZ_[A-Z0-9_]+", path.read_text()))
    unknown = sorted(name for name in named if name[5:].lower() not in Settings.model_fields)
    assert unknown == [], f"{path.name} names variables kurz does not read"


def test_the_health_check_asks_a_real_route() -> None:
    check = next(
        line for line in DOCKERFILE.read_text().splitlines() if "CMD" in line and "urlopen" in line
    )
    paths = re.findall(r"127\.0\.0\.1:%s(/\w+)'", check)
    routes = {getattr(route, "path", None) for route in health.router.routes}
    assert paths == ["/healthz"]
    assert "/healthz" in routes


def test_the_commands_run_are_kurz_commands() -> None:
    commands = {command.name or command.callback.__name__ for command in app.registered_commands}  # type: ignore[union-attr]
    assert 'CMD ["kurz", "serve"]' in DOCKERFILE.read_text()
    run = {
        tuple(service["command"])
        for service in _compose(SCALED)["services"].values()
        if _interpolated(service["image"]) == "localhost/kurz:latest"
    }
    assert run == {("kurz", "serve"), ("kurz", "migrate"), ("kurz", "worker")}
    assert {argv[1] for argv in run} <= commands


def test_the_image_keeps_sqlite_on_its_volume(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert "VOLUME /data" in DOCKERFILE.read_text()
    embedded = _compose(EMBEDDED)
    (service,) = embedded["services"].values()
    assert service["volumes"] == ["kurz-data:/data"]
    assert set(embedded["volumes"]) == {"kurz-data"}

    settings = _container_settings(monkeypatch, tmp_path, service, _dockerfile_env())
    assert settings.database_url == "sqlite:////data/kurz.db"
    assert (settings.host, settings.port) == ("0.0.0.0", 8080)  # noqa: S104
    # Never the listening address: short URLs on http://0.0.0.0:8080/ lead nowhere.
    assert settings.base_url == "http://localhost:8080"


def test_the_scaled_setup_migrates_once_before_any_kurz(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    services = _compose(SCALED)["services"]
    assert set(services) == {"postgres", "redis", "migrate", "kurz", "worker"}
    for name in ("kurz", "worker"):
        after = services[name]["depends_on"]
        assert after["migrate"] == {"condition": "service_completed_successfully"}
        assert after["redis"] == {"condition": "service_healthy"}
    assert services["migrate"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}
    assert services["migrate"]["restart"] == "no"
    # Neither listens on HTTP: the image's /healthz check would call them unhealthy.
    assert services["migrate"]["healthcheck"] == services["worker"]["healthcheck"]
    # ["NONE"] rather than `disable: true`, which podman-compose 1.0 passes over.
    assert services["worker"]["healthcheck"] == {"test": ["NONE"]}

    image_env = _dockerfile_env()
    for name in ("migrate", "kurz", "worker"):
        settings = _container_settings(monkeypatch, tmp_path, services[name], image_env)
        assert settings.database_url == "postgresql://kurz:kurz@postgres:5432/kurz"
        assert settings.redis_url == "redis://redis:6379/0"
        assert settings.cache_nodes == ("redis://redis:6379/1",)
        assert settings.base_url == "http://localhost:8080"
        assert settings.embedded_worker is None  # no worker inside serve on PostgreSQL
        assert settings.webhook_key == ""
        assert "KURZ_WEBHOOK_KEY" in services[name]["environment"]
    postgres = services["postgres"]["environment"]
    assert (postgres["POSTGRES_USER"], postgres["POSTGRES_DB"]) == ("kurz", "kurz")
    assert _interpolated(postgres["POSTGRES_PASSWORD"]) == "kurz"


DEPLOY_DOC = ROOT / "docs" / "deploy.md"


def test_the_base_script_points_at_a_section_the_doc_has() -> None:
    """Where podman cannot run the base image, the script names the section that says why."""
    (section,) = re.findall(
        r'docs/deploy\.md, \\"([^"\\]+)\\"', (ROOT / "deploy" / "build-local-base.sh").read_text()
    )
    headings = re.findall(r"^#+ (.+)$", DEPLOY_DOC.read_text(), re.MULTILINE)
    assert any(heading.startswith(section) for heading in headings), section


def test_the_doc_writes_the_podman_settings_it_shows() -> None:
    """docs/deploy.md writes its containers.conf.d file with printf, and shows it as TOML:
    the same lines."""
    text = DEPLOY_DOC.read_text()
    (command,) = re.findall(r"^printf '%s\\n' (.+?) > (/etc/\S+)$", text, re.MULTILINE | re.DOTALL)
    written = shlex.split(command[0].replace("\\\n", " "))
    (shown,) = re.findall(r"```toml\n(.*?)```", text, re.DOTALL)
    assert written == shown.splitlines()
    assert command[1] == "/etc/containers/containers.conf.d/50-this-machine.conf"
    assert f"`{command[1]}`" in text
