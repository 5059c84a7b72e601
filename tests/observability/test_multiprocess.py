"""Several worker processes: `PROMETHEUS_MULTIPROC_DIR` makes any scrape the whole service.

Multi-process mode is chosen when `prometheus_client` is imported, so the workers are real
processes: one interpreter imports the metrics and forks the others (as a pre-loading server
does), once for the module; the scrapes here merge their files.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from facetoface.observability.metrics import render_metrics

WORKERS = 3

#: `WORKERS` processes serving the same traffic: this one and its forks. The label sets are
#: handed over as the app's wiring does (`create_app` → `configure_labels`), without importing
#: the whole app.
WORKER = f"""
import os
from facetoface.observability import metrics
metrics.configure_labels(metrics.LabelSets(start_failure_reasons=frozenset({{"tavus_unavailable"}})))

def serve():
    metrics.record_session_started()
    metrics.record_start_failure("tavus_unavailable")
    metrics.observe_http_request("POST", "/v1/sessions", 201, 0.2)
    metrics.record_tavus_request("create_conversation", "ok", 0.4)
    metrics.HTTP_IN_PROGRESS.inc()

children = []
for _ in range({WORKERS} - 1):
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            serve()
            code = 0
        finally:
            os._exit(code)
    children.append(pid)
serve()
for pid in children:
    assert os.waitpid(pid, 0)[1] == 0
"""


@pytest.fixture(scope="module")
def multiproc_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample files of `WORKERS` worker processes that each served the same traffic."""
    directory = tmp_path_factory.mktemp("prometheus-multiproc")
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    result = subprocess.run(
        [sys.executable, "-c", WORKER],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # One file per process and metric type (counter, histogram, gauge).
    assert len({path.name.rsplit("_", 1)[1] for path in directory.glob("*.db")}) == WORKERS
    return directory


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_samples_of_every_worker_are_merged(
    multiproc_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A scrape served by any worker: `render_metrics()` with the variable set, as every
    # worker process has it.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(multiproc_dir))
    body, content_type = render_metrics()
    assert content_type.startswith("text/plain")
    merged = _samples(body.decode())

    assert merged[("facetoface_sessions_started_total", frozenset())] == WORKERS
    failures = frozenset({("reason", "tavus_unavailable")})
    assert merged[("facetoface_session_start_failures_total", failures)] == WORKERS
    http = frozenset({("method", "POST"), ("route", "/v1/sessions"), ("status", "201")})
    assert merged[("facetoface_http_requests_total", http)] == WORKERS
    tavus = frozenset({("endpoint", "create_conversation"), ("outcome", "ok")})
    assert merged[("facetoface_tavus_request_duration_seconds_count", tavus)] == WORKERS
    # livesum: summed over the processes (dead ones are dropped by mark_process_dead).
    assert merged[("facetoface_http_requests_in_progress", frozenset())] == WORKERS

    # The same merge given the directory explicitly (no variable).
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR")
    body, _ = render_metrics(multiprocess_path=str(multiproc_dir))
    assert _samples(body.decode())[("facetoface_sessions_started_total", frozenset())] == WORKERS


def test_openmetrics_is_served_when_asked_for(multiproc_dir: Path) -> None:
    body, content_type = render_metrics(
        "application/openmetrics-text; version=1.0.0", multiprocess_path=str(multiproc_dir)
    )
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
    assert b"facetoface_sessions_started_total 3.0" in body
