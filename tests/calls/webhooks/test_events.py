"""Events are raised where the state changes (the pipeline's completion and
failure, the bulk outcome action), stored with the change, sent after
commit, and reach only the organization's subscribed, enabled endpoints."""

from __future__ import annotations

import json

import pytest
from django.db import transaction
from django.urls import reverse
from standardwebhooks import Webhook

from calls import pipeline
from calls.models import Call
from calls.tenancy.models import Membership
from calls.webhooks import tasks
from calls.webhooks.events import OUTCOME_BATCH, emit_event
from calls.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from resilience.providers.openai import OpenAIClient
from tests import factories
from tests.calls.webhooks.conftest import ALL_EVENTS


def received_payloads(receiver, secret: str) -> list[dict]:
    return [Webhook(secret).verify(r.body, r.headers) for r in receiver.received]


@pytest.fixture
def transcribed_call(org, member) -> Call:
    call = factories.make_call(
        org,
        rep=member.user,
        status=Call.Status.ANALYZING,
        score=None,
        sentiment=None,
        talk_ratio=None,
        title="Renewal with Jane Doe of Initech",
        customer_name="Jane Doe",
    )
    factories.make_transcript(call)
    return call


def test_a_completed_analysis_sends_call_completed_once_with_no_personal_data(
    endpoint_and_secret, receiver, transcribed_call, simulator, django_capture_on_commit_callbacks
):
    _, secret = endpoint_and_secret
    with OpenAIClient() as client, django_capture_on_commit_callbacks(execute=True):
        analysis = pipeline.analyse_call(transcribed_call, client=client)
        pipeline.analyse_call(transcribed_call, client=client)  # a second run finds the work done

    (payload,) = received_payloads(receiver, secret)
    assert payload["type"] == "call.completed"
    data = payload["data"]
    assert data["call_id"] == transcribed_call.pk
    assert data["status"] == "completed"
    assert data["score"] == analysis.score
    assert data["rep_id"] == transcribed_call.rep_id
    body = receiver.received[0].body.decode()
    for personal in ("Jane Doe", "Initech", transcribed_call.rep.email, "pricing look like", analysis.summary):
        assert personal not in body


def test_a_failed_call_sends_call_failed_once(endpoint_and_secret, receiver, call, django_capture_on_commit_callbacks):
    _, secret = endpoint_and_secret
    with django_capture_on_commit_callbacks(execute=True):
        pipeline.fail_call(call, reason="Transcription failed: assemblyai: HTTP 400")
        pipeline.fail_call(call, reason="Transcription failed again")

    (payload,) = received_payloads(receiver, secret)
    assert payload["type"] == "call.failed"
    assert payload["data"]["call_id"] == call.pk
    assert payload["data"]["reason"] == "Transcription failed: assemblyai: HTTP 400"


def test_setting_the_outcome_in_bulk_sends_each_changed_call_with_its_previous_outcome(
    client, org, endpoint_and_secret, receiver, django_capture_on_commit_callbacks
):
    _, secret = endpoint_and_secret
    manager = factories.make_membership(org, role=Membership.Role.MANAGER)
    lost = factories.make_call(org, rep=manager.user, outcome=Call.Outcome.LOST)
    unknown = factories.make_call(org, rep=manager.user, outcome=Call.Outcome.UNKNOWN)
    already_won = factories.make_call(org, rep=manager.user, outcome=Call.Outcome.WON)
    client.force_login(manager.user)
    ids = [lost.pk, unknown.pk, already_won.pk]
    client.post(reverse("calls:select"), {"action": "select_page", "page_ids": ids})

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("calls:bulk_outcome"), {"outcome": "won"})

    assert response.status_code == 302
    (payload,) = received_payloads(receiver, secret)
    assert payload["type"] == "call.outcome_changed"
    assert payload["data"]["outcome"] == "won"
    assert payload["data"]["calls"] == [
        {"call_id": lost.pk, "previous_outcome": "lost", "rep_id": manager.user_id},
        {"call_id": unknown.pk, "previous_outcome": None, "rep_id": manager.user_id},
    ]


def test_a_reps_bulk_outcome_announces_only_the_calls_it_changed(
    client, org, endpoint_and_secret, receiver, django_capture_on_commit_callbacks
):
    _, secret = endpoint_and_secret
    rep = factories.make_membership(org, role=Membership.Role.REP)
    colleague = factories.make_membership(org, role=Membership.Role.REP)
    mine = factories.make_call(org, rep=rep.user, outcome="")
    theirs = factories.make_call(org, rep=colleague.user, outcome="")
    client.force_login(rep.user)
    client.post(reverse("calls:select"), {"action": "select_page", "page_ids": [mine.pk, theirs.pk]})

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("calls:bulk_outcome"), {"outcome": "lost"})

    (payload,) = received_payloads(receiver, secret)
    assert [c["call_id"] for c in payload["data"]["calls"]] == [mine.pk]


def test_many_outcome_changes_are_batched(org, endpoint, django_capture_on_commit_callbacks):
    from calls.webhooks.events import emit_outcome_changes

    calls = [factories.make_call(org, outcome="") for _ in range(OUTCOME_BATCH + 3)]
    queryset = Call.objects.filter(pk__in=[c.pk for c in calls])
    assert emit_outcome_changes(org, queryset, "won") == 2
    sizes = sorted(len(json.loads(e.body)["data"]["calls"]) for e in WebhookEvent.objects.all())
    assert sizes == [3, OUTCOME_BATCH]


def test_only_subscribed_enabled_endpoints_of_the_organization_get_an_event(org, other_org, receiver):
    wants, _ = WebhookEndpoint.create_with_secret(
        organization=org, url=receiver.url("/wants"), description="", events=["call.failed"]
    )
    WebhookEndpoint.create_with_secret(
        organization=org, url=receiver.url("/other-events"), description="", events=["call.completed"]
    )
    disabled, _ = WebhookEndpoint.create_with_secret(
        organization=org, url=receiver.url("/disabled"), description="", events=ALL_EVENTS
    )
    disabled.set_enabled(False)
    WebhookEndpoint.create_with_secret(
        organization=other_org, url=receiver.url("/other-org"), description="", events=ALL_EVENTS
    )

    event = emit_event(org, "call.failed", {"call_id": 1})

    assert [d.endpoint_id for d in event.deliveries.all()] == [wants.pk]


def test_an_organization_without_endpoints_stores_nothing(org):
    assert emit_event(org, "call.completed", {"call_id": 1}) is None
    assert not WebhookEvent.objects.exists()


def test_a_rolled_back_change_sends_nothing(endpoint, receiver, django_capture_on_commit_callbacks):
    def failing_change() -> None:
        with transaction.atomic():
            emit_event(endpoint.organization, "call.completed", {"call_id": 1})
            raise RuntimeError("the state change failed")

    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        failing_change()
    assert not WebhookEvent.objects.exists()
    assert receiver.received == []


def test_an_event_whose_queueing_was_lost_is_sent_by_the_sweep(endpoint_and_secret, receiver):
    _, secret = endpoint_and_secret
    # No on-commit capture: the queueing never happens, as with a broker that was down.
    emit_event(endpoint_and_secret[0].organization, "call.completed", {"call_id": 9})
    assert receiver.received == []

    assert tasks.send_due_webhooks() == 1

    (payload,) = received_payloads(receiver, secret)
    assert payload["data"] == {"call_id": 9}
    assert WebhookDelivery.objects.get().status == WebhookDelivery.Status.SUCCEEDED
    assert tasks.send_due_webhooks() == 0


def test_staff_changing_a_calls_outcome_in_the_admin_send_call_outcome_changed(
    client, staff_user, call, endpoint_and_secret, receiver, django_capture_on_commit_callbacks
):
    _, secret = endpoint_and_secret
    client.force_login(staff_user)
    url = reverse("admin:calls_call_change", args=[call.pk])
    form = client.get(url).context["adminform"].form
    data = {name: value for name, value in form.initial.items() if value is not None}
    data |= {
        "organization": call.organization_id,
        "rep": call.rep_id,
        "started_at_0": call.started_at.strftime("%Y-%m-%d"),
        "started_at_1": call.started_at.strftime("%H:%M:%S"),
        "created_at_0": call.created_at.strftime("%Y-%m-%d"),
        "created_at_1": call.created_at.strftime("%H:%M:%S"),
        "outcome": "lost",
        "transcript-TOTAL_FORMS": 0,
        "transcript-INITIAL_FORMS": 0,
        "analysis-TOTAL_FORMS": 0,
        "analysis-INITIAL_FORMS": 0,
    }
    data.pop("recording", None)
    data.pop("delayed_until", None)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors if response.context else ""
    call.refresh_from_db()
    assert call.outcome == "lost"
    (payload,) = received_payloads(receiver, secret)
    assert payload["data"]["calls"] == [{"call_id": call.pk, "previous_outcome": "won", "rep_id": call.rep_id}]
