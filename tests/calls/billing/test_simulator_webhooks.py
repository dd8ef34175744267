"""End to end: the provider simulator signs and sends Paddle webhooks over
loopback HTTP to the live app, with its knobs for duplicates, bad signatures,
stale timestamps and delays."""

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from django.core.management import call_command
from django.urls import reverse

from calls.billing.models import BillingAccount, PaddleEvent
from resilience.providers.simulator import SECRET_HEADER, SimulatorControl, SimulatorServer
from resilience.providers.simulator_paddle import rfc3339
from tests.calls.billing.helpers import SECRET


@pytest.fixture
def paddle_sim() -> Iterator[SimulatorControl]:
    server = SimulatorServer("127.0.0.1", 0, paddle_webhook_secret=SECRET)
    server.start()
    control = SimulatorControl(server.url, server.secret)
    yield control
    control.close()
    server.stop()


@pytest.fixture
def hook_url(live_server) -> str:
    return live_server.url + reverse("billing:paddle_webhook")


def wait_for_deliveries(sim: SimulatorControl, count: int) -> list[dict]:
    """Block until the simulator has made `count` deliveries (an event, not a clock, ends the wait)."""
    done = threading.Event()
    for _ in range(600):
        deliveries = sim.state()["paddle_webhooks"]
        if len(deliveries) >= count:
            return deliveries
        done.wait(0.05)
    raise AssertionError(f"the simulator made {len(deliveries)} of {count} deliveries")


def test_a_signed_subscription_updated_from_the_simulator_changes_the_plan(paddle_sim, hook_url, client, org, member):
    answer = paddle_sim.paddle_event(
        hook_url, event_type="subscription.updated", organization_id=org.pk, price_id="pri_business"
    )
    assert answer["deliveries"] == [200]
    account = BillingAccount.objects.get(organization=org)
    assert (account.plan, account.status) == ("business", "active")
    assert account.last_event_id == answer["event_id"]
    # And a person sees it.
    client.force_login(member.user)
    html = client.get(reverse("billing:usage")).text
    assert "Business plan" in html
    assert 'data-testid="plan-badge">Business<' in html
    assert paddle_sim.state()["paddle_webhooks"] == [{"event_id": answer["event_id"], "status": 200}]


def test_duplicates_from_the_simulator_are_applied_once(paddle_sim, hook_url, org):
    answer = paddle_sim.paddle_event(hook_url, organization_id=org.pk, price_id="pri_team", duplicates=2)
    assert answer["deliveries"] == [200, 200, 200]
    assert PaddleEvent.objects.filter(event_id=answer["event_id"]).count() == 1
    assert BillingAccount.objects.get(organization=org).plan == "team"


@pytest.mark.parametrize(
    "knob", [{"bad_signature": True}, {"timestamp_offset_seconds": -3600}, {"timestamp_offset_seconds": 3600}]
)
def test_a_bad_signature_or_timestamp_from_the_simulator_is_refused(paddle_sim, hook_url, org, knob):
    answer = paddle_sim.paddle_event(hook_url, organization_id=org.pk, price_id="pri_business", **knob)
    assert answer["deliveries"] == [400]
    assert not BillingAccount.objects.exists()
    assert not PaddleEvent.objects.exists()


def test_a_delayed_older_event_arriving_after_a_newer_one_is_not_applied(paddle_sim, hook_url, org):
    now = datetime.now(UTC)
    sub = {"organization_id": org.pk, "subscription_id": "sub_sim_order", "customer_id": "ctm_sim_order"}
    older = paddle_sim.paddle_event(
        hook_url, occurred_at=rfc3339(now - timedelta(minutes=2)), price_id="pri_business", delay_ms=300, **sub
    )
    assert older["deliveries"] == []  # queued: delivered after the newer one below
    newer = paddle_sim.paddle_event(
        hook_url, event_type="subscription.canceled", status="canceled", occurred_at=rfc3339(now), **sub
    )
    assert newer["deliveries"] == [200]
    deliveries = wait_for_deliveries(paddle_sim, 2)
    assert [d["event_id"] for d in deliveries] == [newer["event_id"], older["event_id"]]
    assert PaddleEvent.objects.get(event_id=older["event_id"]).outcome == PaddleEvent.Outcome.STALE
    assert BillingAccount.objects.get(organization=org).status == "canceled"


def test_the_simulator_sends_only_to_loopback_and_checks_its_fields(paddle_sim):
    for body in (
        {"url": "http://example.com/webhooks/paddle"},
        {"url": "http://127.0.0.1/", "event_type": "nope"},
        {"url": "http://127.0.0.1/", "colour": 1},
    ):
        response = paddle_sim.http.post("/_sim/paddle-event", json=body)
        assert response.status_code == 400
    unsigned = httpx.post(paddle_sim.url + "/_sim/paddle-event", json={"url": "http://127.0.0.1/"})
    assert unsigned.status_code == 403  # the control secret is required


def test_the_management_command_sends_a_paddle_event(paddle_sim, hook_url, org, settings, capsys):
    settings.PROVIDER_SIMULATOR_SECRET = paddle_sim.http.headers[SECRET_HEADER]
    call_command(
        "provider_simulator", "--url", paddle_sim.url, "paddle-event",
        "--app-url", hook_url, "--org", str(org.pk), "--price-id", "pri_business", "--duplicates", "1",
    )  # fmt: skip
    assert json.loads(capsys.readouterr().out)["deliveries"] == [200, 200]
    assert BillingAccount.objects.get(organization=org).plan == "business"
