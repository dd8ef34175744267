"""A poison task for tests/calls/test_pipeline_rabbitmq.py, loaded into the test's
worker with `celery worker --include`: it kills the worker process running it,
every time, as a message that crashes its consumer would."""

import os
import signal

from celery import shared_task


@shared_task(name="tests.calls.rabbitmq_poison.crash_the_worker", acks_late=True)
def crash_the_worker() -> None:
    os.kill(os.getpid(), signal.SIGKILL)
