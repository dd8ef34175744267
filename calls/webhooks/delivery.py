"""Delivering webhooks: one attempt of one delivery, and what follows from it.

An attempt claims the delivery with a conditional UPDATE (a lease), so the
task that was queued on commit and the periodic sweep never send it twice at
once. It checks the destination (destinations.py: resolved now, connected to
by the checked address), asks the endpoint's own circuit breaker
(`breaker("webhook-<id>")`: an endpoint that is down costs its own deliveries a
wait and nobody else's), and POSTs the event's body with fresh Standard
Webhooks headers: short timeouts, redirects not followed, at most
RESPONSE_LIMIT bytes of the answer read and kept.

- 2xx: delivered; the endpoint's failure streak ends.
- Anything else (other status, timeout, refused address): logged, and tried
  again after RETRY_DELAYS (5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, ±10 %
  jitter: about 28 hours in all), then the delivery fails.
- Breaker open: not an attempt; the delivery waits for the breaker's next trial.
- An endpoint whose every attempt has failed for DISABLE_AFTER (at least
  DISABLE_MIN_FAILURES of them) is disabled, its pending deliveries fail,
  and `endpoint_disabled` is sent (the admins are emailed through the outbox).

Every function takes `now`, so tests walk the schedule with a fake clock."""

from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from celery.exceptions import SoftTimeLimitExceeded
from django.db import transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.dispatch import Signal
from django.utils import timezone

from calls.webhooks.destinations import Destination, DestinationRefused, destination
from calls.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from calls.webhooks.signing import signature_headers
from resilience.breaker import CircuitOpenError, breaker
from resilience.errors import (
    ProviderBadResponse,
    ProviderClientError,
    ProviderError,
    ProviderRateLimited,
    ProviderServerError,
    ProviderTimeout,
)

logger = logging.getLogger("calliq.calls.webhooks")

# Wait after the 1st, 2nd, … failed attempt; after the last one the delivery fails.
RETRY_DELAYS = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1
JITTER = 0.1
CONNECT_TIMEOUT = 3.0
TIMEOUT = 10.0
# Reading the answer stops here; tasks.deliver_webhook's time limits bound the rest (a dripped header).
TOTAL_TIME = 15.0
# Longer than any attempt can take, so a lease never expires under a live attempt.
LEASE = timedelta(seconds=60)
RESPONSE_LIMIT = 2000
DISABLE_AFTER = timedelta(hours=24)
DISABLE_MIN_FAILURES = 5
USER_AGENT = "CallIQ-Webhooks/1"

# Sent (endpoint, reason, now) inside the transaction that disables an endpoint.
# calls.pipeline, which owns the email outbox, emails the organization's admins
# (connected in CallsConfig.ready(), so this package never imports the outbox).
endpoint_disabled = Signal()
# The delivery log is kept this long (tasks.prune_webhook_log, daily).
LOG_RETENTION_DAYS = 30


@dataclass(frozen=True)
class AttemptResult:
    outcome: str  # "succeeded", "retrying", "failed", "deferred" (breaker open), "skipped"
    retry_at: datetime | None = None
    attempt: WebhookAttempt | None = None


@dataclass
class _Exchange:
    status: int | None = None
    body: str = ""
    duration_ms: int = 0


def retry_delay(attempts: int, *, rng: random.Random | None = None) -> timedelta:
    """The wait after `attempts` failed attempts, with ±JITTER so many
    deliveries failing together do not come back together."""
    base = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
    return base * (1 + (rng or random).uniform(-JITTER, JITTER))


def http_client() -> httpx.Client:
    # trust_env=False: no proxy from the environment may sit between the checked address and the request.
    return httpx.Client(
        timeout=httpx.Timeout(TIMEOUT, connect=CONNECT_TIMEOUT),
        follow_redirects=False,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


def _read_bounded(response: httpx.Response, started: float) -> str:
    """At most RESPONSE_LIMIT bytes, and no reading past TOTAL_TIME: httpx's
    timeouts are per read, so a body dripped a byte at a time would otherwise
    hold the worker for RESPONSE_LIMIT reads."""
    taken = bytearray()
    for chunk in response.iter_bytes():
        taken += chunk
        if len(taken) >= RESPONSE_LIMIT or time.perf_counter() - started > TOTAL_TIME:
            break
    return bytes(taken[:RESPONSE_LIMIT]).decode("utf-8", errors="replace")


def _post(client: httpx.Client, target: Destination, headers: dict[str, str], body: str, exchange: _Exchange) -> None:
    """POST once; raises a ProviderError for any answer but 2xx, so the breaker
    counts 5xx, 429 and timeouts against the endpoint (and its own 4xx not)."""
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    start = time.perf_counter()
    try:
        with client.stream(
            "POST",
            target.url,
            content=body.encode(),
            headers={**headers, "Host": target.host_header, "Content-Type": "application/json"},
            extensions=extensions,
        ) as response:
            exchange.status = response.status_code
            exchange.body = _read_bounded(response, start)
    finally:
        exchange.duration_ms = int((time.perf_counter() - start) * 1000)
    status = exchange.status
    if 200 <= status < 300:
        return
    message = f"HTTP {status}"
    if status == 429:
        raise ProviderRateLimited("webhook", message, status=status)
    if status >= 500:
        raise ProviderServerError("webhook", message, status=status)
    if status == 408:
        raise ProviderTimeout("webhook", message, status=status)
    if 300 <= status < 400:
        raise ProviderBadResponse("webhook", f"{message}: redirects are not followed", status=status)
    raise ProviderClientError("webhook", message, status=status)


def _claim(delivery_id: int, now: datetime) -> WebhookDelivery | None:
    delivery = WebhookDelivery.objects.select_related("event", "endpoint").filter(pk=delivery_id).first()
    if delivery is None or delivery.status != WebhookDelivery.Status.PENDING or delivery.next_attempt_at > now:
        return None
    claimed = WebhookDelivery.objects.filter(
        pk=delivery.pk, status=WebhookDelivery.Status.PENDING, next_attempt_at=delivery.next_attempt_at
    ).update(next_attempt_at=now + LEASE)
    return delivery if claimed else None


def attempt_delivery(
    delivery_id: int, *, now: datetime | None = None, client: httpx.Client | None = None
) -> AttemptResult:
    """Make the delivery's next attempt if it is due and nobody else is making it."""
    now = now or timezone.now()
    delivery = _claim(delivery_id, now)
    if delivery is None:
        return AttemptResult("skipped")
    endpoint = delivery.endpoint
    if not endpoint.is_enabled:
        _finish(delivery, status=WebhookDelivery.Status.FAILED, error="The endpoint is disabled.")
        return AttemptResult("failed")
    exchange = _Exchange()
    error = ""
    try:
        target = destination(endpoint.url)
        headers = signature_headers(
            secrets_in_force=endpoint.signing_secrets(now),
            msg_id=delivery.event.msg_id,
            body=delivery.event.body,
            now=now,
        )
        owned = client is None
        client = client or http_client()
        try:
            breaker(endpoint.breaker_name).call(_post, client, target, headers, delivery.event.body, exchange)
        finally:
            if owned:
                client.close()
    except CircuitOpenError as exc:
        retry_at = (exc.next_trial_at or now + timedelta(seconds=60)) + timedelta(seconds=random.uniform(0, 5))
        _finish(delivery, next_attempt_at=retry_at, error="Waiting: the endpoint's circuit breaker is open.")
        return AttemptResult("deferred", retry_at=retry_at)
    except DestinationRefused as exc:
        error = str(exc)
    except ProviderError as exc:
        error = str(exc).removeprefix("webhook: ")
    except SoftTimeLimitExceeded:
        error = "Took too long in all: the endpoint answered too slowly."
    except httpx.TimeoutException:
        error = f"Timed out (connect {CONNECT_TIMEOUT:g} s, answer {TIMEOUT:g} s)."
    except httpx.HTTPError as exc:
        error = f"Could not connect: {type(exc).__name__}."
    return _record(delivery, exchange, error=error, now=now)


def _record(delivery: WebhookDelivery, exchange: _Exchange, *, error: str, now: datetime) -> AttemptResult:
    succeeded = not error
    endpoint = delivery.endpoint
    with transaction.atomic():
        # Locking the row numbers attempts one at a time; reading it counts this attempt
        # in the round a redelivery pressed meanwhile has started (attempts back to 0).
        locked = WebhookDelivery.objects.select_for_update().filter(pk=delivery.pk).first()
        if locked is not None:
            delivery.attempts = locked.attempts
        attempt = WebhookAttempt.objects.create(
            delivery=delivery,
            number=WebhookAttempt.objects.filter(delivery=delivery).count() + 1,
            at=now,
            duration_ms=exchange.duration_ms,
            status_code=exchange.status,
            response_body=exchange.body,
            error=error[:300],
            succeeded=succeeded,
        )
        delivery.attempts += 1
        delivery.last_status_code = exchange.status
        if succeeded:
            _finish(delivery, status=WebhookDelivery.Status.SUCCEEDED, delivered_at=now, error="")
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(consecutive_failures=0, failing_since=None)
            return AttemptResult("succeeded", attempt=attempt)
        if delivery.attempts >= MAX_ATTEMPTS:
            _finish(delivery, status=WebhookDelivery.Status.FAILED, error=error)
            result = AttemptResult("failed", attempt=attempt)
        else:
            retry_at = now + retry_delay(delivery.attempts)
            _finish(delivery, next_attempt_at=retry_at, error=error)
            result = AttemptResult("retrying", retry_at=retry_at, attempt=attempt)
        WebhookEndpoint.objects.filter(pk=endpoint.pk).update(
            consecutive_failures=F("consecutive_failures") + 1, failing_since=Coalesce(F("failing_since"), now)
        )
        endpoint.refresh_from_db(fields=["consecutive_failures", "failing_since", "is_enabled"])
        if (
            endpoint.is_enabled
            and endpoint.consecutive_failures >= DISABLE_MIN_FAILURES
            and endpoint.failing_since is not None
            and now - endpoint.failing_since >= DISABLE_AFTER
        ):
            hours = int(DISABLE_AFTER.total_seconds() // 3600)
            disable_endpoint(
                endpoint,
                reason=f"Every delivery attempt failed for {hours} hours "
                f"({endpoint.consecutive_failures} in a row; the last: {error})"[:300],
                now=now,
            )
    return result


def _finish(delivery: WebhookDelivery, *, error: str, **fields: object) -> None:
    fields["last_error"] = error[:300]
    for name, value in fields.items():
        setattr(delivery, name, value)
    delivery.save(update_fields=["attempts", "last_status_code", *fields])


def disable_endpoint(endpoint: WebhookEndpoint, *, reason: str, now: datetime | None = None) -> bool:
    """Disable the endpoint (if it is enabled), fail its pending deliveries and
    send endpoint_disabled (the admins' email). True if this call disabled it."""
    now = now or timezone.now()
    with transaction.atomic():
        flipped = WebhookEndpoint.objects.filter(pk=endpoint.pk, is_enabled=True).update(
            is_enabled=False, disabled_reason=reason[:300], disabled_at=now
        )
        if not flipped:
            return False
        WebhookDelivery.objects.filter(endpoint_id=endpoint.pk).pending().update(
            status=WebhookDelivery.Status.FAILED, last_error="The endpoint was disabled."
        )
        # Inside the transaction: whatever a receiver stores (the admins' emails) commits with the disabling.
        endpoint_disabled.send(sender=WebhookEndpoint, endpoint=endpoint, reason=reason, now=now)
    logger.warning("webhook endpoint %s disabled: %s", endpoint.pk, reason)
    return True


def prune_log(*, older_than: datetime, batch: int = 1000) -> int:
    """Delete events created before `older_than` with no pending delivery, `batch` at a time."""
    deleted = 0
    while True:
        ids = list(
            WebhookEvent.objects.filter(created_at__lt=older_than)
            .exclude(deliveries__status=WebhookDelivery.Status.PENDING)
            .values_list("pk", flat=True)[:batch]
        )
        if not ids:
            return deleted
        WebhookEvent.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
