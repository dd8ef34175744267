"""Exact across workers and worker recycling: real gunicorn, four workers each
recycled every 50 requests, serves 2,000 requests; /metrics then reports
exactly 2,000 for that route (each worker flushes its buffer at exit)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families

from tests.private_redis import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "gunicorn-test-monitoring-token"
REQUESTS = 2000


def health_count(base: str) -> float:
    text = httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "calliq_http_requests_total" and s.labels["route"] == "monitoring/health":
                total += s.value
    return total


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_four_recycled_gunicorn_workers_report_exactly_the_requests_served():
    port = free_port(None)
    db = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CALLIQ_METRICS_PREFIX": f"gunicorn-{uuid.uuid4().hex[:8]}:metrics",
        "CALLIQ_MONITORING_TOKEN": TOKEN,
        "CALLIQ_METRICS_FLUSH_SECONDS": "1",
        "DJANGO_DEBUG": "1",
    }
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "calliq.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "4",
            "--max-requests",
            "50",
            # Recycled workers fork from the loaded master: quick to replace, and
            # the buffer's after-fork reset is exercised on every recycling.
            "--preload",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{base}/metrics", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, "gunicorn exited"
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)

        def hit(_: int) -> int:
            with httpx.Client(timeout=30) as client:  # a new connection each time, spread across workers
                return client.get(f"{base}/monitoring/health").status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            statuses = list(pool.map(hit, range(REQUESTS)))
        assert len(statuses) == REQUESTS
        # Live workers flush within a second; recycled ones flushed as they exited.
        deadline = time.monotonic() + 30
        while (count := health_count(base)) < REQUESTS and time.monotonic() < deadline:
            time.sleep(0.5)
        assert count == REQUESTS
        time.sleep(2.5)  # two more flush intervals: nothing is counted twice
        assert health_count(base) == REQUESTS
    finally:
        server.terminate()
        server.wait(timeout=30)
