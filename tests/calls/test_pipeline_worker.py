"""The pipeline with a REAL Celery worker process (started here, our Redis DB
as broker, not eager) against the provider simulator: a task that meets an
open breaker re-queues itself to the next trial and completes after the
provider recovers, and a recording goes all the way to the rep's email."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction

from calliq.celery import app as celery_app
from calls import tasks
from calls.models import Call, OutboundEmail
from resilience.breaker import breaker
from resilience.models import BreakerEvent
from tests import factories
from tests.resilience import storm_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

WORKER_OPTIONS = ["--pool=solo", "--without-heartbeat", "--without-gossip", "--without-mingle", "-l", "INFO"]


@pytest.fixture
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def worker(simulator, media, tmp_path):
    """A Celery worker process on our Redis DB, and this process publishing to it."""
    log = tmp_path / "worker.log"
    env = os.environ | storm_worker.child_env(
        simulator.url,
        CELERY_TASK_ALWAYS_EAGER="0",
        CALLIQ_MEDIA_ROOT=str(media),
        BREAKER_POLICY_TTL="0.2",
        CALLIQ_LOG_LEVEL="INFO",
    )
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "calliq",
                "worker",
                *WORKER_OPTIONS,
                "-Q",
                settings.CELERY_TASK_DEFAULT_QUEUE,
            ],
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


def wait_for(predicate, seconds: float, log) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.05)


def test_a_task_meeting_an_open_breaker_requeues_itself_and_completes_after_recovery(
    worker, sim, fast_policy, org, member
):
    fast_policy("openai", failure_threshold=5, open_seconds=1.5)
    sim.configure("openai", outage=True)
    for _ in range(5):
        with pytest.raises(Exception):  # noqa: B017, PT011 (any provider failure trips it)
            breaker("openai").call(lambda: (_ for _ in ()).throw(RuntimeError("down")))
    assert breaker("openai").snapshot().state == "open"
    call = factories.make_call(org, rep=member.user, status=Call.Status.ANALYZING, score=None, sentiment=None)
    factories.make_transcript(call)

    tasks.analyse_call_task.delay(call.pk)

    # The worker meets the open breaker: the call is marked delayed, the task re-queued.
    wait_for(lambda: Call.objects.get(pk=call.pk).is_delayed, 30, worker)
    # The next trial (in the worker) still fails: the breaker reopens, the task goes back in the queue.
    wait_for(lambda: sim.counters("openai")["statuses"].get("503", 0) >= 1, 30, worker)
    assert Call.objects.get(pk=call.pk).status == Call.Status.ANALYZING
    sim.configure("openai", outage=False)

    wait_for(lambda: Call.objects.get(pk=call.pk).status == Call.Status.COMPLETED, 30, worker)
    call.refresh_from_db()
    assert not call.is_delayed
    assert call.score is not None
    statuses = sim.counters("openai")["statuses"]
    assert statuses["200"] == 1  # the analysis ran once, after recovery
    breaker("openai").sync_events()
    moves = list(BreakerEvent.objects.for_service("openai").order_by("at", "id").values_list("from_state", "to_state"))
    assert ("half_open", "open") in moves
    assert moves[-1] == ("half_open", "closed")
    assert worker.read_text().count("calls.tasks.analyse_call_task") >= 3  # received, re-queued, re-run


def test_a_recording_goes_through_the_whole_pipeline_in_the_worker(worker, sim, org, member):
    with transaction.atomic():
        call = factories.make_call(org, rep=member.user, status=Call.Status.UPLOADED, score=None, sentiment=None)
        call.recording.save("call.wav", ContentFile(b"RIFF....WAVEfmt a recorded sales call"), save=True)
        tasks.start_pipeline(call)  # published only when this transaction commits

    wait_for(lambda: OutboundEmail.objects.filter(call=call, status=OutboundEmail.Status.SENT).exists(), 60, worker)
    call.refresh_from_db()
    assert call.status == Call.Status.COMPLETED
    assert call.transcript.utterances
    assert call.analysis.summary
    state = sim.state()
    assert state["services"]["assemblyai"]["counters"]["requests"] == 3
    assert state["services"]["openai"]["counters"]["requests"] == 1
    assert state["emails_sent"][0]["to"] == [member.user.email]
