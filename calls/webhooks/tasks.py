"""Celery tasks of webhooks out: ids in, the work done by calls.webhooks.delivery.

A retry due within SHORT_WAIT is re-queued with a countdown; longer waits
(minutes to hours) are left to the sweep that Celery beat runs every 15 s,
because a broker holds a countdown message only so long (Redis' visibility
timeout) and would hand it out twice. Both paths go through the delivery's
lease, so a delivery queued twice is still sent once."""

from __future__ import annotations

from datetime import timedelta

from celery import Task, shared_task
from django.utils import timezone

from calls.webhooks import delivery
from calls.webhooks.events import queue_deliveries
from calls.webhooks.models import WebhookDelivery

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
