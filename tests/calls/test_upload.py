"""Uploading a call: the recording and the call are stored first, then the
pipeline runs (in-process here) against the provider simulator."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse

from calls.models import Call, OutboundEmail
from tests import factories


@pytest.fixture
def media(tmp_path):
    with override_settings(MEDIA_ROOT=tmp_path):
        yield tmp_path


def upload_data(member, **overrides):
    data = {
        "title": "Discovery with Initech",
        "customer_name": "Peter Gibbons",
        "customer_company": "Initech",
        "direction": "outbound",
        "started_at": "2026-11-20T10:30",
        "rep": member.user.pk,
        "recording": SimpleUploadedFile("call.wav", b"RIFF....WAVEfmt a sales call", content_type="audio/wav"),
    }
    return data | overrides


def test_an_uploaded_call_is_stored_then_transcribed_analysed_and_emailed(
    client, member, media, simulator, django_capture_on_commit_callbacks
):
    client.force_login(member.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("calls:upload"), upload_data(member))
    call = Call.objects.get(title="Discovery with Initech")
    assert response.status_code == 302
    assert response.url == call.get_absolute_url()
    assert call.organization == member.organization
    assert call.recording.read() == b"RIFF....WAVEfmt a sales call"
    assert call.status == Call.Status.COMPLETED
    assert call.analysis.summary
    assert call.transcript.utterances
    assert call.duration_seconds == call.transcript.utterances[-1]["end_ms"] // 1000 > 0  # measured by the provider
    assert OutboundEmail.objects.get(call=call).status == OutboundEmail.Status.SENT


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"recording": SimpleUploadedFile("notes.txt", b"hello", content_type="text/plain")}, "File extension"),
        ({"recording": SimpleUploadedFile("empty.wav", b"", content_type="audio/wav")}, "empty"),
        ({"title": ""}, "This field is required."),
        ({"started_at": "yesterday-ish"}, "Enter a valid date/time."),
    ],
)
def test_bad_input_is_a_400_with_the_fields_message_and_stores_nothing(client, member, media, overrides, message):
    client.force_login(member.user)
    response = client.post(reverse("calls:upload"), upload_data(member, **overrides))
    assert response.status_code == 400
    assert message in response.text
    assert not Call.objects.exists()
    assert "Peter Gibbons" in response.text or "customer_name" not in overrides  # what was typed is kept


def test_the_rep_must_belong_to_the_organization(client, member, other_member, media):
    client.force_login(member.user)
    response = client.post(reverse("calls:upload"), upload_data(member, rep=other_member.user.pk))
    assert response.status_code == 400
    assert not Call.objects.exists()
    assert other_member.user.get_full_name() not in client.get(reverse("calls:upload")).text


def test_a_provider_outage_keeps_the_upload_and_delays_the_work(
    client, member, media, simulator, sim, django_capture_on_commit_callbacks
):
    sim.configure("assemblyai", outage=True)
    client.force_login(member.user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("calls:upload"), upload_data(member))
    assert response.status_code == 302
    call = Call.objects.get(title="Discovery with Initech")
    assert call.recording.read() == b"RIFF....WAVEfmt a sales call"
    assert call.status == Call.Status.TRANSCRIBING  # not failed: it waits for AssemblyAI
    assert call.is_delayed
    assert "will be retried" in call.delay_reason


def test_a_task_queue_that_is_down_keeps_the_upload_and_leaves_it_waiting(
    client, member, media, django_capture_on_commit_callbacks
):
    from calliq.celery import app

    def use_broker(url: str, *, eager: bool) -> None:
        # Drop the app's references to its producer pools (as Celery does after a
        # fork) so the next publish connects to `url`; the pools of the real
        # broker stay open for the tests that follow.
        app.conf.broker_url, app.conf.task_always_eager = url, eager
        app._pool = None
        app.amqp._producer_pool = None

    saved = app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_transport_options
    app.conf.broker_transport_options = {"max_retries": 0}
    use_broker("redis://127.0.0.1:1/0", eager=False)  # nothing listens on port 1
    try:
        client.force_login(member.user)
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(reverse("calls:upload"), upload_data(member))
    finally:
        app.conf.broker_transport_options = saved[2]
        use_broker(saved[0], eager=saved[1])
    assert response.status_code == 302
    call = Call.objects.get(title="Discovery with Initech")
    assert call.recording.read() == b"RIFF....WAVEfmt a sales call"
    assert call.is_delayed
    assert call.delay_reason.startswith("Waiting to start")


def test_signed_out_visitors_cannot_upload(client, db):
    response = client.post(reverse("calls:upload"), {})
    assert response.status_code == 302
    assert not Call.objects.exists()


def test_the_upload_page_offers_only_the_organizations_members_as_reps(client, member, other_member):
    colleague = factories.make_membership(member.organization).user
    client.force_login(member.user)
    page = client.get(reverse("calls:upload")).text
    assert colleague.get_full_name() in page
    assert other_member.user.get_full_name() not in page
