"""Uploading a call: the recording and the call are stored first, then the
pipeline runs (in-process here) against the provider simulator. Oversized,
mislabelled and malformed uploads are refused before anything is stored."""

import io

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.http.multipartparser import MultiPartParser
from django.test import RequestFactory, override_settings
from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart
from django.urls import reverse

from calls.forms import MAX_UPLOAD_BODY, RECORDING_EXTENSIONS
from calls.models import Call, OutboundEmail
from resilience.uploads import LimitedUploadHandler
from tests import factories

WAV_HEADER = b"RIFF\x24\x00\x00\x00WAVEfmt "


def stored_files(root):
    return [p for p in root.rglob("*") if p.is_file()]


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


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("call.wav", b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + b"\x00" * 200),  # a Windows .exe
        ("call.mp3", b"Meeting notes: call the customer back on Tuesday.\n" * 20),  # text
        ("call.ogg", b"%PDF-1.7\n" + b"0" * 300),  # a PDF
    ],
)
def test_a_file_that_is_not_audio_inside_is_refused_whatever_its_name(client, member, media, name, content):
    client.force_login(member.user)
    response = client.post(reverse("calls:upload"), upload_data(member, recording=SimpleUploadedFile(name, content)))
    assert response.status_code == 400
    assert "not an audio recording" in response.text
    assert ", ".join(RECORDING_EXTENSIONS) in response.text  # the accepted types are named
    assert not Call.objects.exists()
    assert stored_files(media) == []


def test_a_content_length_over_the_limit_is_a_413_before_the_body_is_read(client, member, media):
    client.force_login(member.user)
    body = encode_multipart(BOUNDARY, upload_data(member))
    response = client.generic(
        "POST", reverse("calls:upload"), body, content_type=MULTIPART_CONTENT, CONTENT_LENGTH=str(MAX_UPLOAD_BODY + 1)
    )
    assert response.status_code == 413
    assert "larger than" in response.text
    assert "Nothing was stored" in response.text
    assert response["Content-Type"].startswith("text/html")
    assert not Call.objects.exists()
    assert stored_files(media) == []


def test_other_pages_accept_far_smaller_bodies(client, member, media, settings):
    client.force_login(member.user)
    body = encode_multipart(BOUNDARY, {"action": "clear", "junk": SimpleUploadedFile("big.bin", b"x" * 4096)})
    settings.MAX_REQUEST_BODY_SIZE = 1024
    response = client.generic("POST", reverse("calls:select"), body, content_type=MULTIPART_CONTENT)
    assert response.status_code == 413
    assert "1024" not in response.text  # said in megabytes, a person's unit
    assert stored_files(media) == []


def test_anonymous_visitors_get_the_small_limit_on_the_upload_page(client, db, media, settings):
    settings.MAX_REQUEST_BODY_SIZE = 1024
    body = encode_multipart(BOUNDARY, {"recording": SimpleUploadedFile("call.wav", WAV_HEADER + b"x" * 4096)})
    response = client.generic("POST", reverse("calls:upload"), body, content_type=MULTIPART_CONTENT)
    assert response.status_code == 413
    assert not Call.objects.exists()


def test_the_api_answers_an_oversized_body_with_a_json_413(client, member, settings):
    settings.MAX_REQUEST_BODY_SIZE = 1024
    response = client.generic("POST", reverse("calls_api:list"), b"x" * 2048, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "too_large"


def test_a_malformed_multipart_body_is_a_400_not_a_500(client, member, media):
    client.force_login(member.user)
    response = client.generic(
        "POST", reverse("calls:upload"), b"--nope\r\nrubbish", content_type="multipart/form-data; boundary="
    )
    assert response.status_code == 400
    assert not Call.objects.exists()


def test_the_upload_handler_stops_a_body_at_the_limit_and_leaves_no_file(tmp_path, settings):
    # A body whose declared length was never checked (chunked, or a lying
    # proxy): the handler counts the bytes that arrive and stops the parse.
    settings.FILE_UPLOAD_TEMP_DIR = str(tmp_path)
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 1024  # so Django's own handler writes a temporary file
    payload = encode_multipart(BOUNDARY, {"recording": SimpleUploadedFile("call.wav", WAV_HEADER + b"a" * 3_000_000)})
    request = RequestFactory().get("/calls/upload/")  # what the handlers keep a reference to
    limiter = LimitedUploadHandler(request, 1_000_000)
    parser = MultiPartParser(
        {"CONTENT_TYPE": MULTIPART_CONTENT, "CONTENT_LENGTH": str(len(payload))},
        io.BytesIO(payload),
        [limiter, TemporaryFileUploadHandler(request)],
    )
    _, files = parser.parse()
    assert limiter.exceeded
    assert 1_000_000 < limiter.received < 1_000_000 + 256 * 1024  # stopped within one chunk of the limit
    assert "recording" not in files
    assert list(tmp_path.iterdir()) == []  # the partial temporary file is gone


def test_a_recording_of_several_megabytes_is_stored_and_streamed_to_the_provider(
    client, member, media, simulator, sim, django_capture_on_commit_callbacks
):
    audio = WAV_HEADER + bytes(range(256)) * (5 * 4096)  # ~5 MB: past FILE_UPLOAD_MAX_MEMORY_SIZE, onto disk
    client.force_login(member.user)
    data = upload_data(member, recording=SimpleUploadedFile("long.wav", audio, content_type="audio/wav"))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("calls:upload"), data)
    assert response.status_code == 302
    call = Call.objects.get()
    assert call.status == Call.Status.COMPLETED
    assert call.recording.size == len(audio)
    counters = sim.counters("assemblyai")
    assert counters["upload_bytes"] == len(audio)
    assert counters["chunked_uploads"] == 1  # streamed (Transfer-Encoding: chunked), not one in-memory body


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
