"""Several worker processes: `PROMETHEUS_MULTIPROC_DIR` makes any scrape the whole service."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from facetoface.observability.metrics import render_metrics

WORKER = """
from facetoface.observability import metrics
metrics.record_session_started()
metrics.record_start_failure("tavus_unavailable")
metrics.observe_http_request("POST", "/v1/sessions", 201, 0.2)
metrics.record_tavus_request("create_conversation", "ok", 0.4)
metrics.HTTP_IN_PROGRESS.inc()
"""

SCRAPE = """
import sys
from facetoface.observability import metrics
body, _ = metrics.render_metrics()
sys.stdout.write(body.decode())
"""


def _run(code: str, multiproc_dir: Path, processes: int = 1) -> str:
    """Run `code` in `processes` concurrent interpreters; the first one's stdout."""
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(multiproc_dir)}
    running = [
        subprocess.Popen(
            [sys.executable, "-c", code],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    outputs = []
    for process in running:
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        outputs.append(stdout)
    return outputs[0]


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_samples_of_every_worker_are_merged(tmp_path: Path) -> None:
    _run(WORKER, tmp_path, processes=3)
    assert list(tmp_path.glob("*.db")), "workers wrote no sample files"

    # A scrape served by yet another worker process sees all three.
    merged = _samples(_run(SCRAPE, tmp_path))

    assert merged[("facetoface_sessions_started_total", frozenset())] == 3
    failures = frozenset({("reason", "tavus_unavailable")})
    assert merged[("facetoface_session_start_failures_total", failures)] == 3
    http = frozenset({("method", "POST"), ("route", "/v1/sessions"), ("status", "201")})
    assert merged[("facetoface_http_requests_total", http)] == 3
    tavus = frozenset({("endpoint", "create_conversation"), ("outcome", "ok")})
    assert merged[("facetoface_tavus_request_duration_seconds_count", tavus)] == 3
    # livesum: summed over the processes (dead ones are dropped by mark_process_dead).
    assert merged[("facetoface_http_requests_in_progress", frozenset())] == 3

    # The same merge from this (single-process) interpreter, given the directory.
    body, content_type = render_metrics(multiprocess_path=str(tmp_path))
    assert content_type.startswith("text/plain")
    assert _samples(body.decode())[("facetoface_sessions_started_total", frozenset())] == 3


def test_openmetrics_is_served_when_asked_for(tmp_path: Path) -> None:
    _run(WORKER, tmp_path)
    body, content_type = render_metrics(
        "application/openmetrics-text; version=1.0.0", multiprocess_path=str(tmp_path)
    )
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")
