"""Celery tasks of webhooks out: ids in, the work done by calls.webhooks.delivery.

A retry due within SHORT_WAIT is re-queued with a countdown; longer waits
(minutes to hours) are left to the sweep that Celery beat runs every 15 s,
because a broker holds a countdown message only so long (Redis' visibility
timeout) and would hand it out twice. Both paths go through the delivery's
lease, so a delivery queued twice is still sent once."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta

from celery import Task, shared_task
from django.db import transaction
from django.utils import timezone

from calls.webhooks import delivery
from calls.webhooks.models import WebhookDelivery

logger = logging.getLogger("calliq.calls.webhooks")

SHORT_WAIT = 60.0


# An attempt takes at most ~3 s to connect and 10 s per read; these bound a
# response dripped slowly enough to dodge both (the soft limit is recorded as a
# failed attempt; the hard one ends the task and the lease lets the sweep retry).
@shared_task(bind=True, acks_late=True, soft_time_limit=30, time_limit=45)
def deliver_webhook(self: Task, delivery_id: int) -> str:
    result = delivery.attempt_delivery(delivery_id)
    if result.retry_at is not None and not self.request.is_eager:
        wait = (result.retry_at - timezone.now()).total_seconds()
        if wait <= SHORT_WAIT:
            self.apply_async(args=[delivery_id], countdown=max(wait, 0.0))
    return result.outcome


@shared_task(acks_late=True)
def send_due_webhooks(limit: int = 500) -> int:
    """Queue the deliveries that are due (the safety net for retries and for
    events whose queueing failed); returns how many were queued."""
    due = WebhookDelivery.objects.due(timezone.now()).order_by("next_attempt_at", "id")
    ids = list(due.values_list("pk", flat=True)[:limit])
    queue_deliveries(ids)
    return len(ids)


@shared_task(acks_late=True)
def prune_webhook_log(days: int = delivery.LOG_RETENTION_DAYS) -> int:
    """Delete events (with their deliveries and attempts) older than `days`
    that have nothing pending; returns how many events went."""
    return delivery.prune_log(older_than=timezone.now() - timedelta(days=days))


def queue_deliveries(delivery_ids: Iterable[int]) -> None:
    """Hand deliveries to Celery. Never raises: a broker that is down (or an
    in-process run that fails) leaves them due, for the sweep."""
    for delivery_id in delivery_ids:
        try:
            deliver_webhook.delay(delivery_id)
        except Exception:
            logger.exception("could not queue webhook delivery %s; the sweep will send it", delivery_id)


def redeliver(found: WebhookDelivery, *, now: datetime | None = None) -> bool:
    """Send a delivery again (whatever its status) with the same webhook-id, as a
    new round of the retry schedule, once the caller's transaction commits.
    False if its endpoint is disabled."""
    if not found.endpoint.is_enabled:
        return False
    WebhookDelivery.objects.filter(pk=found.pk).update(
        status=WebhookDelivery.Status.PENDING, attempts=0, next_attempt_at=now or timezone.now(), last_error=""
    )
    transaction.on_commit(lambda: queue_deliveries([found.pk]))
    return True
