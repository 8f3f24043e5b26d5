"""`kurz worker --metrics-port`: the worker's own counters, scraped over HTTP."""

from __future__ import annotations

from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.support import PATIENCE, kurz_env, run, started_worker
from tests.support import free_port


def test_a_worker_serves_its_metrics_on_the_port_it_is_given(tmp_path: Path) -> None:
    port = free_port()
    # Only kurz migrate (or serve) makes the database a worker runs over.
    assert run(["migrate"], kurz_env(), tmp_path).returncode == 0
    worker, seen = started_worker(kurz_env(), tmp_path, "--metrics-port", str(port))
    try:
        assert f"worker metrics on http://127.0.0.1:{port}/metrics" in seen
        answer = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=PATIENCE)
        elsewhere = httpx.get(f"http://127.0.0.1:{port}/", timeout=PATIENCE)
        posted = httpx.post(f"http://127.0.0.1:{port}/metrics", timeout=PATIENCE)
    finally:
        worker.terminate()
        worker.communicate(timeout=PATIENCE)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    values = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(answer.text)
        for sample in family.samples
    }
    assert values[("kurz_worker_jobs_total", (("result", "done"),))] == 0
    assert values[("kurz_worker_running", ())] == 0
    assert values[("kurz_jobs_oldest_due_seconds", ())] >= 0
    assert values[("process_cpu_seconds_total", ())] > 0
    assert elsewhere.status_code == 404
    assert posted.status_code == 405


def test_a_taken_metrics_port_is_one_line(tmp_path: Path) -> None:
    port = free_port()
    # Only kurz migrate (or serve) makes the database a worker runs over.
    assert run(["migrate"], kurz_env(), tmp_path).returncode == 0
    worker, _ = started_worker(kurz_env(), tmp_path, "--metrics-port", str(port))
    try:
        second = run(["worker", "--metrics-port", str(port)], kurz_env(), tmp_path)
    finally:
        worker.terminate()
        worker.communicate(timeout=PATIENCE)
    assert second.returncode == 1
    assert second.stderr.strip().startswith(f"error: cannot serve metrics on 127.0.0.1:{port}")
    assert len(second.stderr.strip().splitlines()) == 1, second.stderr
