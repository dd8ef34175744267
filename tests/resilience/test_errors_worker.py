"""The error tracker with a REAL Celery worker process: an error seen by the
web process is stored by the worker (off the request path), and a task that
fails inside the worker is grouped with its task name."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings

from calliq.celery import app as celery_app
from resilience.models import ErrorGroup
from resilience.monitoring.errors import capture_exception
from tests.resilience import storm_worker
from tests.resilience.test_errors import occurrence

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WORKER_OPTIONS = ["--pool=solo", "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "INFO"]


@pytest.fixture
def worker(tmp_path):
    log = tmp_path / "worker.log"
    env = os.environ | storm_worker.child_env("http://127.0.0.1:1", CELERY_TASK_ALWAYS_EAGER="0")
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "calliq", "worker", *WORKER_OPTIONS],
            cwd=settings.BASE_DIR,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    eager = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = False
    try:
        deadline = time.monotonic() + 60
        while "ready." not in log.read_text():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "worker did not start"
            time.sleep(0.2)
        yield log
    finally:
        celery_app.conf.task_always_eager = eager
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def wait_for_group(log, **lookup) -> ErrorGroup:
    deadline = time.monotonic() + 60
    while not ErrorGroup.objects.filter(**lookup).exists():
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    return ErrorGroup.objects.get(**lookup)


def test_the_worker_stores_an_error_the_web_process_saw(worker):
    capture_exception(occurrence(0, 1))
    group = wait_for_group(worker, title__startswith="ZeroDivisionError")
    assert group.count == 1


def test_a_task_failing_in_the_worker_is_grouped_with_its_task_name(worker):
    for _ in range(2):
        celery_app.send_task("calls.tasks.notify_rep_task", args=["not-a-number"])
    group = wait_for_group(worker, count=2)
    sample = group.samples[0]
    assert sample["source"] == "task"
    assert sample["task"] == "calls.tasks.notify_rep_task"
    assert sample["args"] == {"0": ["not-a-number"]}
