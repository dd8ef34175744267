"""The pipeline on RabbitMQ, the fleet's broker (calliq/settings.py, Celery
section): a REAL Celery worker consumes a quorum queue of this test's own on the
RabbitMQ at CALLIQ_TEST_AMQP_URL (scripts/test.sh makes sure it answers), an
upload goes all the way to completed, and a poison message (its task kills the
worker process every time) ends in the dead-letter queue after
CELERY_DELIVERY_LIMIT deliveries instead of crashing workers forever."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import pytest
from celery import Celery
from django.conf import settings
from django.urls import reverse
from kombu import Connection

from calliq.settings import celery_rabbitmq_settings
from calls.models import Call, OutboundEmail
from tests.calls.test_upload import upload_data
from tests.resilience import storm_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

AMQP_URL = os.environ.get("CALLIQ_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
DELIVERY_LIMIT = 2


@pytest.fixture
def queue():
    """A queue name of this test's own, and its exchanges and queues deleted afterwards."""
    name = f"calliq-test-{uuid.uuid4().hex[:10]}"
    yield name
    with Connection(AMQP_URL) as connection:
        channel = connection.default_channel
        for queue_name in (name, f"{name}.dead"):
            channel.queue_delete(queue_name)
        for exchange in (name, f"{name}.dlx"):
            channel.exchange_delete(exchange)


@pytest.fixture
def media(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def rabbitmq_app(queue):
    """This process publishes with the settings a web host on RabbitMQ has."""
    app = Celery("calliq")
    app.config_from_object("django.conf:settings", namespace="CELERY")
    rabbitmq = celery_rabbitmq_settings(queue, delivery_limit=DELIVERY_LIMIT)
    app.conf.update(
        {key: value for key, value in rabbitmq.items() if key != "dead_letter_queue"},
        broker_url=AMQP_URL,
        task_default_queue=queue,
        task_always_eager=False,
    )
    app.set_current()
    try:
        yield app
    finally:
        app.close()
        from calliq.celery import app as default_app

        default_app.set_current()


@pytest.fixture
def worker(rabbitmq_app, queue, simulator, media, tmp_path):
    """A Celery worker process (prefork, one child) on the test's RabbitMQ queue."""
    log = tmp_path / "worker.log"
    env = os.environ | storm_worker.child_env(
        simulator.url,
        CELERY_BROKER_URL=AMQP_URL,
        CELERY_QUEUE=queue,
        CELERY_DELIVERY_LIMIT=str(DELIVERY_LIMIT),
        CELERY_TASK_ALWAYS_EAGER="0",
        CALLIQ_MEDIA_ROOT=str(media),
        CALLIQ_LOG_LEVEL="INFO",
    )
    command = [sys.executable, "-m", "celery", "-A", "calliq", "worker", "--concurrency=1", "-l", "INFO"]
    command += ["--without-heartbeat", "--without-gossip", "--without-mingle", "-Q", queue]
    command += ["--include", "tests.calls.rabbitmq_poison"]
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=settings.BASE_DIR, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: "ready." in log.read_text(), 60, log, process)
        yield log
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for(predicate, seconds: float, log, process=None) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert process is None or process.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.1)


def queue_arguments(queue: str) -> tuple[int, int]:
    """(messages ready, consumers) of a queue, by a passive declare."""
    with Connection(AMQP_URL) as connection:
        _, messages, consumers = connection.default_channel.queue_declare(queue, passive=True)
    return messages, consumers


def test_an_upload_goes_through_the_pipeline_on_a_rabbitmq_quorum_queue(worker, queue, client, member, sim):
    client.force_login(member.user)

    response = client.post(reverse("calls:upload"), upload_data(member))

    assert response.status_code == 302
    call = Call.objects.get(title="Discovery with Initech")
    wait_for(lambda: OutboundEmail.objects.filter(call=call, status=OutboundEmail.Status.SENT).exists(), 90, worker)
    call.refresh_from_db()
    assert call.status == Call.Status.COMPLETED
    assert call.analysis.summary
    assert sim.state()["emails_sent"][0]["to"] == [member.user.email]
    # The messages went through this test's quorum queue on RabbitMQ, not Redis.
    log = worker.read_text()
    assert "calls.tasks.transcribe_call_task" in log
    assert "calls.tasks.notify_rep_task" in log
    assert queue_arguments(queue) == (0, 1)
    with Connection(AMQP_URL) as connection:
        # Declaring it as a classic queue is refused: it exists as a quorum queue.
        channel = connection.channel()
        with pytest.raises(Exception, match="PRECONDITION_FAILED"):
            channel.queue_declare(queue, durable=True, arguments={"x-queue-type": "classic"})


def test_a_poison_message_ends_in_the_dead_letter_queue_after_the_delivery_limit(worker, queue, rabbitmq_app):
    from tests.calls.rabbitmq_poison import crash_the_worker

    crash_the_worker.delay()

    # Each delivery kills the worker's child; acks_late + reject_on_worker_lost hand the
    # message back; past the delivery limit RabbitMQ dead-letters it.
    wait_for(lambda: queue_arguments(f"{queue}.dead")[0] == 1, 120, worker)
    assert queue_arguments(queue)[0] == 0
    log = worker.read_text()
    assert log.count("tests.calls.rabbitmq_poison.crash_the_worker") >= DELIVERY_LIMIT + 1
    assert "WorkerLostError" in log
    dead_letters = celery_rabbitmq_settings(queue, delivery_limit=DELIVERY_LIMIT)["dead_letter_queue"]
    with Connection(AMQP_URL) as connection:
        message = dead_letters(connection.default_channel).get(no_ack=True)
        assert message.headers["task"] == "tests.calls.rabbitmq_poison.crash_the_worker"
        assert message.headers["x-death"][0]["reason"] == "delivery_limit"
