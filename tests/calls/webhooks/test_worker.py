"""Webhooks with a REAL Celery worker process (tests/calls/test_pipeline_worker.py's
worker: our Redis DB as broker, not eager): a call analysed in the worker
sends call.completed, signed; an endpoint failing once gets the retry 5 s later
from the worker's own re-queue."""

from __future__ import annotations

import pytest
from django.db import transaction
from standardwebhooks import Webhook

from calls import tasks
from calls.models import Call
from calls.webhooks.models import WebhookDelivery
from tests import factories
from tests.calls.test_pipeline_worker import media, wait_for, worker  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def webhook_worker(monkeypatch, request):
    # The worker is another process: it reads the loopback permission from its environment.
    monkeypatch.setenv("CALLIQ_WEBHOOKS_ALLOW_LOOPBACK", "1")
    return request.getfixturevalue("worker")


def test_a_call_analysed_in_the_worker_is_announced_and_a_failed_delivery_retried(
    endpoint_and_secret, receiver, webhook_worker, org, member
):
    _, secret = endpoint_and_secret
    receiver.answer(500, b"not yet")
    with transaction.atomic():
        call = factories.make_call(org, rep=member.user, status=Call.Status.ANALYZING, score=None, sentiment=None)
        factories.make_transcript(call)
    tasks.analyse_call_task.delay(call.pk)

    wait_for(lambda: WebhookDelivery.objects.filter(status="succeeded").exists(), 60, webhook_worker)

    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    payload = Webhook(secret).verify(second.body, second.headers)
    assert payload["type"] == "call.completed"
    assert payload["data"]["call_id"] == call.pk
    delivery = WebhookDelivery.objects.get()
    assert list(delivery.attempt_log.order_by("number").values_list("status_code", flat=True)) == [500, 200]
