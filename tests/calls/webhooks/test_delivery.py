"""Delivering webhooks to a real HTTP receiver on loopback: Standard Webhooks
signatures checked with the standardwebhooks package's own verifier, the
retry schedule walked with a fake clock, the delivery log, a circuit breaker
per endpoint, and automatic disabling with an email to the admins."""

from __future__ import annotations

import datetime as dt
import json

import httpx
import pytest
from django.utils import timezone
from standardwebhooks import Webhook, WebhookVerificationError

from calls.models import OutboundEmail
from calls.tenancy.models import Membership
from calls.webhooks import delivery as service
from calls.webhooks import tasks
from calls.webhooks.events import emit_event
from calls.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent
from resilience.breaker import breaker
from tests import factories
from tests.calls.webhooks.conftest import ALL_EVENTS
from tests.calls.webhooks.receiver import Answer


def new_delivery(endpoint: WebhookEndpoint, payload: dict | None = None) -> WebhookDelivery:
    event = emit_event(endpoint.organization, "call.completed", payload or {"call_id": 1}, endpoints=[endpoint])
    return event.deliveries.get()


def keep_breaker_closed(endpoint: WebhookEndpoint) -> None:
    # The schedule tests are about the schedule: the breaker would (rightly) stop the attempts first.
    breaker(endpoint.breaker_name).force("closed")


# --- Signatures, checked with the receiver-side library -------------------------------


def test_a_delivery_is_signed_so_the_standardwebhooks_verifier_accepts_it(endpoint_and_secret, receiver):
    endpoint, secret = endpoint_and_secret
    delivery = new_delivery(endpoint, {"call_id": 42, "score": 81})

    result = service.attempt_delivery(delivery.pk)

    assert result.outcome == "succeeded"
    (request,) = receiver.received
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "call.completed"
    assert payload["data"] == {"call_id": 42, "score": 81}
    assert request.headers["webhook-id"] == delivery.event.msg_id
    assert request.headers["Content-Type"] == "application/json"


def test_a_tampered_body_fails_verification(endpoint_and_secret, receiver):
    endpoint, secret = endpoint_and_secret
    service.attempt_delivery(new_delivery(endpoint, {"call_id": 42, "outcome": "won"}).pk)
    (request,) = receiver.received
    tampered = request.body.replace(b'"won"', b'"lost"')
    assert tampered != request.body
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(tampered, request.headers)


def test_another_secret_fails_verification(endpoint_and_secret, receiver, org):
    endpoint, _ = endpoint_and_secret
    _, other_secret = WebhookEndpoint.create_with_secret(
        organization=org, url=receiver.url("/other"), description="", events=ALL_EVENTS
    )
    service.attempt_delivery(new_delivery(endpoint).pk)
    (request,) = receiver.received
    with pytest.raises(WebhookVerificationError):
        Webhook(other_secret).verify(request.body, request.headers)


def test_a_stale_timestamp_is_rejected_by_the_verifier(endpoint_and_secret, receiver):
    endpoint, secret = endpoint_and_secret
    delivery = new_delivery(endpoint)
    ten_minutes_ago = timezone.now() - dt.timedelta(minutes=10)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=ten_minutes_ago)

    service.attempt_delivery(delivery.pk, now=ten_minutes_ago)

    (request,) = receiver.received
    assert int(request.headers["webhook-timestamp"]) == int(ten_minutes_ago.timestamp())
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(request.body, request.headers)


def test_a_redelivery_keeps_the_webhook_id_and_is_signed_anew(endpoint_and_secret, receiver):
    endpoint, secret = endpoint_and_secret
    delivery = new_delivery(endpoint)
    service.attempt_delivery(delivery.pk)
    delivery.refresh_from_db()
    assert tasks.redeliver(delivery)
    service.attempt_delivery(delivery.pk)

    first, second = receiver.received
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == delivery.event.msg_id
    assert first.body == second.body
    Webhook(secret).verify(second.body, second.headers)
    assert list(delivery.attempt_log.order_by("number").values_list("number", flat=True)) == [1, 2]


def test_after_a_rotation_both_secrets_verify_for_a_day_then_only_the_new_one(endpoint_and_secret, receiver):
    endpoint, old_secret = endpoint_and_secret
    new_secret = endpoint.rotate_secret()
    assert new_secret != old_secret
    service.attempt_delivery(new_delivery(endpoint).pk)
    (request,) = receiver.received
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    Webhook(old_secret).verify(request.body, request.headers)
    Webhook(new_secret).verify(request.body, request.headers)

    later = timezone.now() + dt.timedelta(hours=25)
    delivery = new_delivery(endpoint)
    WebhookDelivery.objects.filter(pk=delivery.pk).update(next_attempt_at=later)
    service.attempt_delivery(delivery.pk, now=later)
    headers = receiver.received[-1].headers
    assert len(headers["webhook-signature"].split(" ")) == 1
    # Verifying "now" would call the timestamp too new; what matters is which secret signed.
    signed = Webhook(new_secret).sign(
        headers["webhook-id"], later.astimezone(dt.UTC), receiver.received[-1].body.decode()
    )
    assert headers["webhook-signature"] == signed


# --- The delivery log and what is (not) followed -------------------------------------------


def test_the_log_keeps_status_duration_and_a_bounded_body(endpoint, receiver):
    receiver.answer(200, b"x" * 100_000)
    service.attempt_delivery(new_delivery(endpoint).pk)
    attempt = WebhookAttempt.objects.get()
    assert attempt.number == 1
    assert attempt.status_code == 200
    assert attempt.succeeded
    assert attempt.duration_ms >= 0
    assert attempt.response_body == "x" * service.RESPONSE_LIMIT


def test_a_redirect_is_a_failure_and_is_not_followed(endpoint, receiver):
    receiver.answer(302, b"", headers={"Location": receiver.url("/elsewhere")})
    result = service.attempt_delivery(new_delivery(endpoint).pk)
    assert result.outcome == "retrying"
    assert [r.path for r in receiver.received] == ["/hooks"]
    assert WebhookAttempt.objects.get().status_code == 302
    assert "redirects are not followed" in WebhookAttempt.objects.get().error


def test_a_slow_endpoint_times_out_and_is_retried(endpoint, receiver):
    receiver.answer(200, b"late", delay=1.0)
    with httpx.Client(timeout=0.2, follow_redirects=False, trust_env=False) as client:
        result = service.attempt_delivery(new_delivery(endpoint).pk, client=client)
    assert result.outcome == "retrying"
    attempt = WebhookAttempt.objects.get()
    assert attempt.status_code is None
    assert attempt.error.startswith("Timed out")


# --- Retries with backoff -----------------------------------------------------------------


def test_failed_attempts_follow_the_backoff_schedule_then_the_delivery_fails(endpoint, receiver):
    keep_breaker_closed(endpoint)
    receiver.default = Answer(status=503, body=b"down for maintenance")
    delivery = new_delivery(endpoint)
    clock = timezone.now()
    waits = []
    for expected in service.RETRY_DELAYS:
        early = service.attempt_delivery(delivery.pk, now=clock - dt.timedelta(seconds=1))
        result = service.attempt_delivery(delivery.pk, now=clock)
        assert early.outcome == "skipped"
        assert result.outcome == "retrying"
        wait = result.retry_at - clock
        assert expected * (1 - service.JITTER) <= wait <= expected * (1 + service.JITTER)
        waits.append(wait)
        clock = result.retry_at

    last = service.attempt_delivery(delivery.pk, now=clock)

    assert last.outcome == "failed"
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.FAILED
    assert delivery.attempts == service.MAX_ATTEMPTS == len(receiver.received) == 8
    log = list(delivery.attempt_log.order_by("number"))
    assert [a.number for a in log] == list(range(1, 9))
    assert {a.status_code for a in log} == {503}
    assert log[0].response_body == "down for maintenance"
    nominal = sum(service.RETRY_DELAYS, dt.timedelta())
    assert dt.timedelta(hours=26) < nominal < dt.timedelta(hours=30)  # "about a day"
    assert nominal * (1 - service.JITTER) <= sum(waits, dt.timedelta()) <= nominal * (1 + service.JITTER)
    # Nothing more is attempted once it has failed.
    assert service.attempt_delivery(delivery.pk, now=clock + dt.timedelta(days=2)).outcome == "skipped"


def test_a_success_after_failures_ends_the_endpoints_failure_streak(endpoint, receiver):
    receiver.answer(500, b"oops")
    delivery = new_delivery(endpoint)
    first = service.attempt_delivery(delivery.pk)
    endpoint.refresh_from_db()
    assert endpoint.consecutive_failures == 1
    assert endpoint.failing_since is not None

    second = service.attempt_delivery(delivery.pk, now=first.retry_at)

    assert second.outcome == "succeeded"
    endpoint.refresh_from_db()
    assert (endpoint.consecutive_failures, endpoint.failing_since) == (0, None)
    delivery.refresh_from_db()
    assert delivery.status == WebhookDelivery.Status.SUCCEEDED
    assert delivery.last_status_code == 200


def test_a_delivery_being_attempted_is_not_attempted_again_meanwhile(endpoint, receiver):
    delivery = new_delivery(endpoint)
    now = timezone.now()
    claimed = service._claim(delivery.pk, now)
    assert claimed is not None
    # A second worker (the sweep, a duplicate message) finds it leased.
    assert service.attempt_delivery(delivery.pk, now=now).outcome == "skipped"
    assert receiver.received == []


# --- A circuit breaker per endpoint ------------------------------------------------------------


def test_an_endpoint_that_keeps_failing_opens_its_own_breaker_and_waits_while_others_deliver(org, receiver):
    broken, _ = WebhookEndpoint.create_with_secret(
        organization=org, url=receiver.url("/broken"), description="", events=ALL_EVENTS
    )
    healthy, _ = WebhookEndpoint.create_with_secret(
        organization=org, url=receiver.url("/healthy"), description="", events=ALL_EVENTS
    )
    threshold = breaker(broken.breaker_name).policy.failure_threshold
    receiver.answer(500, b"broken", times=threshold)
    for _ in range(threshold):
        assert service.attempt_delivery(new_delivery(broken).pk).outcome == "retrying"
    assert len(receiver.received) == threshold

    waiting = new_delivery(broken)
    result = service.attempt_delivery(waiting.pk)

    assert result.outcome == "deferred"
    assert len(receiver.received) == threshold  # the open breaker kept the request from going out
    waiting.refresh_from_db()
    assert waiting.status == WebhookDelivery.Status.PENDING
    assert waiting.attempts == 0  # waiting for the breaker is not a failed attempt
    assert not waiting.attempt_log.exists()
    assert waiting.next_attempt_at >= timezone.now() + dt.timedelta(seconds=30)
    assert "circuit breaker is open" in waiting.last_error

    assert service.attempt_delivery(new_delivery(healthy).pk).outcome == "succeeded"
    assert receiver.received[-1].path == "/healthy"


def test_an_endpoint_answering_4xx_does_not_open_its_breaker(endpoint, receiver):
    threshold = breaker(endpoint.breaker_name).policy.failure_threshold
    receiver.answer(400, b"bad payload", times=threshold + 1)
    for _ in range(threshold + 1):
        assert service.attempt_delivery(new_delivery(endpoint).pk).outcome == "retrying"
    assert len(receiver.received) == threshold + 1


# --- Disabling after a day of failures ------------------------------------------------------


def test_an_endpoint_failing_for_a_day_is_disabled_and_its_admins_are_emailed(
    org, endpoint, receiver, sim, django_capture_on_commit_callbacks
):
    keep_breaker_closed(endpoint)
    admins = [factories.make_membership(org, role=Membership.Role.ADMIN) for _ in range(2)]
    factories.make_membership(org, role=Membership.Role.MANAGER)
    receiver.default = Answer(status=500, body=b"nope")
    delivery = new_delivery(endpoint)
    other_pending = new_delivery(endpoint)
    clock = timezone.now()
    WebhookDelivery.objects.filter(pk=other_pending.pk).update(next_attempt_at=clock + dt.timedelta(days=3))

    with django_capture_on_commit_callbacks(execute=True):
        while True:
            result = service.attempt_delivery(delivery.pk, now=clock)
            endpoint.refresh_from_db()
            if not endpoint.is_enabled or result.retry_at is None:
                break
            clock = result.retry_at

    assert not endpoint.is_enabled
    assert clock - endpoint.failing_since >= dt.timedelta(hours=24)
    assert "Every delivery attempt failed for 24 hours" in endpoint.disabled_reason
    other_pending.refresh_from_db()
    assert other_pending.status == WebhookDelivery.Status.FAILED
    emails = OutboundEmail.objects.filter(organization=org)
    assert sorted(emails.values_list("to_email", flat=True)) == sorted(a.user.email for a in admins)
    assert all(endpoint.url in e.text for e in emails)
    sent_to = sorted(address for email in sim.state()["emails_sent"] for address in email["to"])
    assert sent_to == sorted(a.user.email for a in admins)
    # Disabled: nothing more goes out, and a redelivery is refused until an admin enables it.
    requests_so_far = len(receiver.received)
    assert not tasks.redeliver(delivery)
    assert tasks.send_due_webhooks() == 0
    assert len(receiver.received) == requests_so_far


def test_a_short_failure_streak_does_not_disable_the_endpoint(endpoint, receiver):
    keep_breaker_closed(endpoint)
    receiver.default = Answer(status=500, body=b"")
    delivery = new_delivery(endpoint)
    clock = timezone.now()
    for _ in range(4):
        result = service.attempt_delivery(delivery.pk, now=clock)
        assert result.outcome == "retrying"
        clock = result.retry_at
    endpoint.refresh_from_db()
    assert endpoint.is_enabled
    assert endpoint.consecutive_failures == 4


def test_a_disabled_endpoints_pending_delivery_fails_without_a_request(endpoint, receiver):
    delivery = new_delivery(endpoint)
    endpoint.set_enabled(False)
    assert service.attempt_delivery(delivery.pk).outcome == "failed"
    assert receiver.received == []
    delivery.refresh_from_db()
    assert delivery.last_error == "The endpoint is disabled."


def test_the_body_sent_is_exactly_the_stored_event(endpoint, receiver):
    delivery = new_delivery(endpoint, {"call_id": 7, "started_at": "2026-01-01T00:00:00Z"})
    service.attempt_delivery(delivery.pk)
    assert receiver.received[0].body.decode() == delivery.event.body
    assert json.loads(delivery.event.body)["data"]["call_id"] == 7


def test_the_log_is_pruned_after_its_retention_but_pending_deliveries_are_kept(endpoint, receiver):
    old_done = new_delivery(endpoint)
    old_pending = new_delivery(endpoint)
    recent = new_delivery(endpoint)
    service.attempt_delivery(old_done.pk)
    long_ago = timezone.now() - dt.timedelta(days=service.LOG_RETENTION_DAYS + 1)
    WebhookEvent.objects.filter(pk__in=[old_done.event_id, old_pending.event_id]).update(created_at=long_ago)

    assert tasks.prune_webhook_log() == 1

    assert set(WebhookEvent.objects.values_list("pk", flat=True)) == {old_pending.event_id, recent.event_id}
    assert not WebhookAttempt.objects.filter(delivery_id=old_done.pk).exists()


def test_a_redelivery_pressed_during_an_attempt_starts_the_round_that_attempt_counts_in(endpoint, receiver):
    receiver.answer(500, b"", times=2)
    delivery = new_delivery(endpoint)
    clock = timezone.now()
    result = service.attempt_delivery(delivery.pk, now=clock)
    claimed = service._claim(delivery.pk, result.retry_at)  # the second attempt is under way…
    assert claimed is not None
    delivery.refresh_from_db()
    tasks.redeliver(delivery)  # …when an admin presses Redeliver

    exchange = service._Exchange(status=500, body="", duration_ms=3)
    service._record(claimed, exchange, error="HTTP 500", now=result.retry_at)

    delivery.refresh_from_db()
    assert delivery.attempts == 1  # the first of the new round, not the third
    assert delivery.status == WebhookDelivery.Status.PENDING
    assert list(delivery.attempt_log.order_by("number").values_list("number", flat=True)) == [1, 2]
