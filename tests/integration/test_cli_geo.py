"""`kurz serve` and `kurz worker` with KURZ_GEOIP_DB naming no usable MaxMind DB file: one
line saying why, exit code 1, no traceback, before anything is served."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import mmdb


def kurz(*args: str, env: dict[str, str], home: Path) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "KURZ_DATABASE_URL": f"sqlite:///{home / 'kurz.db'}",
        "KURZ_PORT": "0",
        "KURZ_GRPC_PORT": "0",
        "PYTHONPATH": os.pathsep.join(sys.path),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "kurz", *args],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_missing_file_stops_kurz_with_one_line(tmp_path: Path, command: str) -> None:
    missing = tmp_path / "GeoLite2-City.mmdb"
    done = kurz(command, env={"KURZ_GEOIP_DB": str(missing)}, home=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == f"error: KURZ_GEOIP_DB: {missing} does not exist"
    assert not (tmp_path / "kurz.db").exists()  # stopped before it touched the database


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_a_file_that_is_no_maxmind_db_stops_kurz_with_one_line(
    tmp_path: Path, command: str
) -> None:
    foreign = tmp_path / "GeoLite2-City.csv"
    foreign.write_text("network,geoname_id\n81.2.69.0/24,2643743\n")
    done = kurz(command, env={"KURZ_GEOIP_DB": str(foreign)}, home=tmp_path)
    assert done.returncode == 1
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"error: KURZ_GEOIP_DB: {foreign} is no MaxMind DB file (")
    assert "Traceback" not in done.stderr


def test_a_file_with_the_data_off_is_a_configuration_error(tmp_path: Path) -> None:
    places = mmdb(tmp_path / "city.mmdb", {"81.2.69.0/24": ("GB", "London")})
    done = kurz("serve", env={"KURZ_GEOIP_DB": str(places), "KURZ_GEOIP": "off"}, home=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == (
        "error: bad configuration: KURZ_GEOIP_DB: Value error, names a file while "
        "KURZ_GEOIP is off: unset one of them"
    )
