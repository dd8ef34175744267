"""POST /webhooks/paddle: only Paddle's signed events are applied, each once,
in the order they happened, to the organization they name."""

import json
import logging
import threading

import pytest
from django.db import connection
from django.urls import reverse

from calls.billing.checks import check_billing_settings
from calls.billing.models import BillingAccount, PaddleEvent
from calls.billing.usage import current_usage
from calls.billing.webhooks import apply_paddle_event, parse_event
from resilience.providers.paddle_webhooks import sign_paddle_webhook
from tests.calls.billing.helpers import SECRET, minutes_ago, now_ts, paddle_event, post_event


def account_of(org) -> BillingAccount:
    return BillingAccount.objects.get(organization=org)


def test_a_signed_subscription_created_gives_the_organization_its_plan(client, org):
    event = paddle_event(org.pk, event_type="subscription.created", price_id="pri_team", status="active")
    response = post_event(client, event)
    assert response.status_code == 200
    assert response.json() == {"event_id": event["event_id"], "outcome": "applied"}
    account = account_of(org)
    assert (account.plan, account.status) == ("team", "active")
    assert account.paddle_subscription_id == event["data"]["id"]
    assert account.paddle_customer_id == event["data"]["customer_id"]
    assert account.period_starts_at.isoformat().startswith(event["data"]["current_billing_period"]["starts_at"][:19])
    assert current_usage(org).minutes_included == 3000
    assert PaddleEvent.objects.get().outcome == PaddleEvent.Outcome.APPLIED


@pytest.mark.parametrize(
    ("how", "kwargs"),
    [
        ("tampered body", {"tamper": True}),
        ("wrong secret", {"secret": "not-the-destination-secret"}),
        ("stale timestamp", {"offset": -301}),
        ("future timestamp", {"offset": 301}),
        ("missing header", {"header": ""}),
        ("garbage header", {"header": "v1,abcdef"}),
    ],
)
def test_an_event_without_a_valid_signature_is_a_400_applies_nothing_and_is_logged(client, org, caplog, how, kwargs):
    event = paddle_event(org.pk, event_type="subscription.created", price_id="pri_business")
    body = json.dumps(event).encode()
    if "offset" in kwargs:
        kwargs["timestamp"] = now_ts() + kwargs.pop("offset")
    if kwargs.pop("tamper", False):
        kwargs["header"] = sign_paddle_webhook(body, SECRET)
        body = body.replace(b"pri_business", b"pri_team_____")
    with caplog.at_level(logging.WARNING, logger="calliq.calls.billing"):
        response = post_event(client, body, **kwargs)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid signature"}
    assert not BillingAccount.objects.exists()
    assert not PaddleEvent.objects.exists()
    assert "Paddle webhook refused" in caplog.text


def test_a_replayed_event_id_is_a_200_that_changes_nothing(client, org):
    event = paddle_event(org.pk, event_type="subscription.created", price_id="pri_team")
    assert post_event(client, event).json()["outcome"] == "applied"
    # The same event id again, even re-signed with other contents: Paddle's retry, or a replay.
    replay = event | {"data": event["data"] | {"status": "canceled", "current_billing_period": None}}
    response = post_event(client, replay)
    assert response.status_code == 200
    assert response.json()["outcome"] == "duplicate"
    assert account_of(org).status == "active"
    assert PaddleEvent.objects.count() == 1


@pytest.mark.parametrize(
    ("event_type", "status", "price_id", "plan", "effective"),
    [
        ("subscription.created", "active", "pri_team", "team", "Team"),
        ("subscription.created", "trialing", "pri_business", "business", "Business"),
        ("subscription.updated", "active", "pri_business", "business", "Business"),
        ("subscription.activated", "active", "pri_team", "team", "Team"),
        ("subscription.trialing", "trialing", "pri_team", "team", "Team"),
        ("subscription.past_due", "past_due", "pri_team", "team", "Team"),  # dunning: still the plan
        ("subscription.paused", "paused", "pri_team", "team", "Free"),
        ("subscription.resumed", "active", "pri_business", "business", "Business"),
        ("subscription.canceled", "canceled", "pri_team", "team", "Free"),
    ],
)
def test_each_subscription_event_sets_the_plan_and_status(client, org, event_type, status, price_id, plan, effective):
    response = post_event(client, paddle_event(org.pk, event_type=event_type, status=status, price_id=price_id))
    assert response.status_code == 200
    account = account_of(org)
    assert (account.plan, account.status) == (plan, status)
    assert current_usage(org).plan.name == effective


def test_a_subscription_goes_from_created_to_past_due_to_canceled(client, org):
    sub = {"subscription_id": "sub_lifecycle", "customer_id": "ctm_lifecycle"}
    post_event(client, paddle_event(org.pk, at=minutes_ago(30), event_type="subscription.created", **sub))
    post_event(
        client, paddle_event(org.pk, at=minutes_ago(20), event_type="subscription.past_due", status="past_due", **sub)
    )
    assert account_of(org).status == "past_due"
    change = {"action": "cancel", "effective_at": "2026-12-01T00:00:00.000000Z", "resume_at": None}
    post_event(client, paddle_event(org.pk, at=minutes_ago(15), scheduled_change=change, **sub))
    assert account_of(org).scheduled_change == change
    post_event(
        client, paddle_event(org.pk, at=minutes_ago(10), event_type="subscription.canceled", status="canceled", **sub)
    )
    account = account_of(org)
    assert account.status == "canceled"
    assert account.period_ends_at is None
    assert current_usage(org).plan.key == "free"


def test_an_event_older_than_the_last_applied_one_is_recorded_but_not_applied(client, org):
    sub = {"subscription_id": "sub_order", "customer_id": "ctm_order"}
    canceled = paddle_event(org.pk, at=minutes_ago(1), event_type="subscription.canceled", status="canceled", **sub)
    late_update = paddle_event(org.pk, at=minutes_ago(5), status="active", price_id="pri_business", **sub)
    assert post_event(client, canceled).json()["outcome"] == "applied"
    response = post_event(client, late_update)
    assert response.status_code == 200
    assert response.json()["outcome"] == "stale"
    account = account_of(org)
    assert (account.plan, account.status) == ("team", "canceled")
    assert account.last_event_id == canceled["event_id"]


def test_later_events_without_custom_data_find_the_organization_by_paddle_customer(client, org, other_org):
    post_event(client, paddle_event(org.pk, at=minutes_ago(5), subscription_id="sub_a", customer_id="ctm_a"))
    upgrade = paddle_event(
        None, at=minutes_ago(1), subscription_id="sub_a", customer_id="ctm_a", price_id="pri_business"
    )
    assert upgrade["data"]["custom_data"] is None
    assert post_event(client, upgrade).json()["outcome"] == "applied"
    assert account_of(org).plan == "business"
    assert not BillingAccount.objects.filter(organization=other_org).exists()


def test_an_event_for_no_known_organization_is_acknowledged_and_recorded_only(client, org, caplog):
    with caplog.at_level(logging.WARNING, logger="calliq.calls.billing"):
        response = post_event(client, paddle_event(None, customer_id="ctm_stranger"))
    assert response.status_code == 200  # else Paddle retries for days
    assert response.json()["outcome"] == "unmatched"
    assert not BillingAccount.objects.exists()
    assert "matches no organization" in caplog.text


def test_another_subscription_naming_the_organization_cannot_cancel_the_one_it_pays_for(client, org):
    post_event(client, paddle_event(org.pk, at=minutes_ago(5), subscription_id="sub_real", price_id="pri_business"))
    # Someone else checks out with custom_data naming this organization, then cancels.
    intruder = {"subscription_id": "sub_intruder", "customer_id": "ctm_intruder"}
    post_event(client, paddle_event(org.pk, at=minutes_ago(3), price_id="pri_team", **intruder))
    response = post_event(client, paddle_event(org.pk, at=minutes_ago(1), status="canceled", **intruder))
    assert response.json()["outcome"] == "other_subscription"
    account = account_of(org)
    assert (account.paddle_subscription_id, account.plan, account.status) == ("sub_real", "business", "active")


def test_after_a_cancellation_a_new_subscription_takes_over(client, org):
    post_event(client, paddle_event(org.pk, at=minutes_ago(9), subscription_id="sub_old", status="canceled"))
    # The new subscription's creation happened before the old one's last event arrived: still applied.
    response = post_event(
        client, paddle_event(org.pk, at=minutes_ago(20), subscription_id="sub_new", price_id="pri_business")
    )
    assert response.json()["outcome"] == "applied"
    account = account_of(org)
    assert (account.paddle_subscription_id, account.plan, account.status) == ("sub_new", "business", "active")


def test_an_unknown_price_keeps_the_plan_it_had(client, org):
    post_event(client, paddle_event(org.pk, at=minutes_ago(5), subscription_id="sub_p", price_id="pri_business"))
    post_event(client, paddle_event(org.pk, at=minutes_ago(1), subscription_id="sub_p", price_id="pri_legacy"))
    assert account_of(org).plan == "business"


def test_other_event_types_are_acknowledged_and_recorded(client, org):
    event = paddle_event(org.pk) | {"event_type": "transaction.completed"}
    assert post_event(client, event).json()["outcome"] == "ignored_type"
    assert not BillingAccount.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        json.dumps({"event_type": "subscription.updated", "occurred_at": "2026-11-29T10:00:00Z", "data": {}}).encode(),
        json.dumps(
            {"event_id": "evt_1", "event_type": "subscription.updated", "occurred_at": "yesterday", "data": {}}
        ).encode(),
        json.dumps(
            {
                "event_id": "evt_1",
                "event_type": "subscription.updated",
                "occurred_at": "2026-11-29T10:00:00",
                "data": {},
            }
        ).encode(),
        json.dumps(
            {
                "event_id": "evt_1",
                "event_type": "subscription.updated",
                "occurred_at": "2026-11-29T10:00:00Z",
                "data": {"id": "sub_1", "status": "exploded"},
            }
        ).encode(),
        json.dumps(
            {
                "event_id": "e" * 65,
                "event_type": "subscription.updated",
                "occurred_at": "2026-11-29T10:00:00Z",
                "data": {},
            }
        ).encode(),
        json.dumps(paddle_event(1, subscription_id="sub_" + "x" * 61)).encode(),
        json.dumps(paddle_event(1) | {"data": paddle_event(1)["data"] | {"customer_id": 12}}).encode(),
    ],
    ids=[
        "not json",
        "not an object",
        "no event id",
        "bad date",
        "naive date",
        "unknown status",
        "long id",
        "long subscription id",
        "numeric customer",
    ],
)
def test_a_signed_body_that_is_not_a_paddle_event_is_a_400(client, org, body):
    response = post_event(client, body)
    assert response.status_code == 400
    assert response.json()["error"]
    assert not PaddleEvent.objects.exists()


def test_a_huge_body_is_refused_before_it_is_read(client, org):
    body = b'{"pad": "' + b"x" * (300 * 1024) + b'"}'
    assert post_event(client, body).status_code == 413
    assert not PaddleEvent.objects.exists()


def test_the_endpoint_takes_only_post(client):
    assert client.get(reverse("billing:paddle_webhook")).status_code == 405


def test_without_a_configured_secret_every_webhook_is_refused(client, org, settings):
    providers = {name: dict(config) for name, config in settings.PROVIDERS.items()}
    providers["paddle"]["webhook_secret"] = ""
    settings.PROVIDERS = providers
    assert post_event(client, paddle_event(org.pk), secret="").status_code == 400
    assert not PaddleEvent.objects.exists()


def test_the_plan_in_the_navigation_of_a_cached_page_follows_a_webhook(
    client, org, member, django_capture_on_commit_callbacks
):
    client.force_login(member.user)
    before = client.get(reverse("calls:list")).text
    assert 'data-testid="plan-badge">Free<' in before
    with django_capture_on_commit_callbacks(execute=True):
        post_event(client, paddle_event(org.pk, price_id="pri_business"))
    assert 'data-testid="plan-badge">Business<' in client.get(reverse("calls:list")).text


def test_a_plan_table_without_free_or_with_a_shared_price_is_a_check_error(settings):
    assert check_billing_settings() == []
    settings.BILLING_PLANS = {
        "team": {"name": "Team", "minutes": 1, "price_id": "pri_x"},
        "business": {"name": "Business", "minutes": 2, "price_id": "pri_x"},
    }
    assert [m.id for m in check_billing_settings()] == ["calls.E101", "calls.E102"]


@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_twice_at_once_is_applied_once(org):
    event = parse_event(json.dumps(paddle_event(org.pk, price_id="pri_business")).encode())
    start = threading.Barrier(4)
    outcomes = []

    def deliver() -> None:
        start.wait()
        try:
            outcomes.append(apply_paddle_event(event))
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes, key=str) == [None, None, None, PaddleEvent.Outcome.APPLIED]
    assert PaddleEvent.objects.count() == 1
    assert BillingAccount.objects.get(organization=org).plan == "business"


@pytest.mark.django_db(transaction=True)
def test_events_of_one_subscription_arriving_at_once_end_in_the_newest_state(org):
    sub = {"subscription_id": "sub_race", "customer_id": "ctm_race"}
    events = [
        parse_event(json.dumps(paddle_event(org.pk, at=minutes_ago(10 - n), price_id=price, **sub)).encode())
        for n, price in enumerate(["pri_team", "pri_business", "pri_team", "pri_business"])
    ]
    start = threading.Barrier(len(events))

    def deliver(event) -> None:
        start.wait()
        try:
            apply_paddle_event(event)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(event,)) for event in events]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    account = BillingAccount.objects.get(organization=org)
    assert (account.last_event_id, account.plan) == (events[-1].event_id, "business")
    assert PaddleEvent.objects.count() == 4
    assert BillingAccount.objects.count() == 1


def test_a_form_body_is_refused_with_415_and_nothing_applied(client, db):
    response = client.post("/webhooks/paddle", {"event_id": "evt_1"})
    assert response.status_code == 415
    assert "application/json" in response.json()["error"]
