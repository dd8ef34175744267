"""The call pipeline in-process (tasks run eagerly) against the provider
simulator: transcription, analysis and the rep's email, and the fallbacks
when a provider is down: analysis delayed, email kept in the outbox."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from django.core.files.base import ContentFile
from django.test import override_settings
from django.utils import timezone

from calls import pipeline, tasks
from calls.models import Call, CallAnalysis, OutboundEmail
from resilience.breaker import breaker
from resilience.providers.assemblyai import AssemblyAIClient
from resilience.providers.openai import OpenAIClient
from resilience.providers.resend import ResendClient
from tests import factories


@pytest.fixture
def media(tmp_path):
    with override_settings(MEDIA_ROOT=tmp_path):
        yield tmp_path


@pytest.fixture
def uploaded_call(org, member, media) -> Call:
    call = factories.make_call(
        org, rep=member.user, status=Call.Status.UPLOADED, score=None, sentiment=None, talk_ratio=None
    )
    call.recording.save("call.wav", ContentFile(b"RIFF....WAVEfmt recording of a sales call"))
    return call


@pytest.fixture
def transcribed_call(uploaded_call) -> Call:
    factories.make_transcript(uploaded_call)
    uploaded_call.status = Call.Status.ANALYZING
    uploaded_call.save()
    return uploaded_call


@pytest.fixture
def clients(simulator):
    made = {
        "assemblyai": AssemblyAIClient(),
        "openai": OpenAIClient(),
        "resend": ResendClient(initial_delay=0.01),
    }
    yield made
    for client in made.values():
        client.close()


def test_a_call_goes_from_recording_to_analysis_to_the_reps_email(uploaded_call, clients, sim):
    transcript = pipeline.transcribe_call(uploaded_call, client=clients["assemblyai"])
    assert transcript.utterances
    assert uploaded_call.status == Call.Status.ANALYZING
    analysis = pipeline.analyse_call(uploaded_call, client=clients["openai"])
    email = pipeline.notify_rep(uploaded_call, client=clients["resend"])

    uploaded_call.refresh_from_db()
    assert uploaded_call.status == Call.Status.COMPLETED
    assert uploaded_call.score == analysis.score
    assert uploaded_call.talk_ratio == analysis.talk_ratio
    assert 0 < analysis.talk_ratio < 1
    assert "pricing" in analysis.topics
    assert email.status == OutboundEmail.Status.SENT
    assert sim.state()["emails_sent"][0]["to"] == [uploaded_call.rep.email]


def test_pipeline_steps_run_twice_do_the_work_once(uploaded_call, clients, sim):
    for _ in range(2):
        pipeline.transcribe_call(uploaded_call, client=clients["assemblyai"])
        pipeline.analyse_call(uploaded_call, client=clients["openai"])
        pipeline.notify_rep(uploaded_call, client=clients["resend"])
    assert sim.requests("assemblyai") == 3  # upload, create, read
    assert sim.requests("openai") == 1
    assert len(sim.state()["emails_sent"]) == 1
    assert CallAnalysis.objects.filter(call=uploaded_call).count() == 1


def test_the_tasks_run_the_whole_pipeline_once_the_upload_commits(
    uploaded_call, simulator, sim, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        tasks.start_pipeline(uploaded_call)
    uploaded_call.refresh_from_db()
    assert uploaded_call.status == Call.Status.COMPLETED
    assert OutboundEmail.objects.get(call=uploaded_call).status == OutboundEmail.Status.SENT


def test_analysis_is_delayed_while_the_openai_breaker_is_open_and_resumes_later(transcribed_call, simulator, sim):
    breaker("openai").force("open", actor="test")
    tasks.analyse_call_task.delay(transcribed_call.pk)
    transcribed_call.refresh_from_db()
    assert transcribed_call.is_delayed
    assert transcribed_call.status == Call.Status.ANALYZING
    assert "Analysis delayed" in transcribed_call.delay_reason
    assert sim.requests("openai") == 0

    breaker("openai").force("reset", actor="test")
    Call.objects.filter(pk=transcribed_call.pk).update(delayed_until=timezone.now() - dt.timedelta(seconds=1))
    assert tasks.resume_delayed_calls() == 1
    transcribed_call.refresh_from_db()
    assert transcribed_call.status == Call.Status.COMPLETED
    assert not transcribed_call.is_delayed


def test_a_failure_that_opens_the_breaker_delays_the_analysis_rather_than_failing_it(
    transcribed_call, simulator, sim, fast_policy
):
    fast_policy("openai", failure_threshold=1, open_seconds=60)
    sim.configure("openai", outage=True)
    tasks.analyse_call_task.delay(transcribed_call.pk)
    transcribed_call.refresh_from_db()
    assert transcribed_call.is_delayed
    assert transcribed_call.status == Call.Status.ANALYZING
    assert sim.requests("openai") == 1


def test_email_waits_in_the_outbox_while_resend_is_down_and_goes_out_when_it_recovers(
    transcribed_call, clients, sim, fast_policy
):
    fast_policy("resend", failure_threshold=1, open_seconds=0.3)
    pipeline.analyse_call(transcribed_call, client=clients["openai"])
    sim.configure("resend", outage=True)
    email = pipeline.notify_rep(transcribed_call, client=clients["resend"])
    assert email.status == OutboundEmail.Status.PENDING
    assert email.attempts == 1
    assert breaker("resend").snapshot().state == "open"

    sim.configure("resend", outage=False)
    sim.reset_counters()
    OutboundEmail.objects.update(next_attempt_at=timezone.now())
    assert pipeline.send_outbox(client=clients["resend"]) == 0  # still open: nothing reaches Resend
    assert sim.requests("resend") == 0
    time.sleep(0.35)
    OutboundEmail.objects.update(next_attempt_at=timezone.now())
    assert tasks.flush_email_outbox() == 1
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.SENT
    assert email.provider_id
    assert pipeline.send_outbox(client=clients["resend"]) == 0
    assert len(sim.state()["emails_sent"]) == 1


def test_an_email_resend_rejects_is_marked_failed_not_retried_forever(transcribed_call, clients, sim):
    pipeline.analyse_call(transcribed_call, client=clients["openai"])
    email = pipeline.queue_rep_email(transcribed_call)
    email.subject = ""
    email.save()
    assert pipeline.send_email(email, client=clients["resend"]) is False
    email.refresh_from_db()
    assert email.status == OutboundEmail.Status.FAILED
    assert "422" in email.last_error


def test_a_call_without_a_recording_fails_with_a_reason(org, member, simulator):
    call = factories.make_call(org, rep=member.user, status=Call.Status.UPLOADED, score=None)
    tasks.transcribe_call_task.delay(call.pk)
    call.refresh_from_db()
    assert call.status == Call.Status.FAILED
    assert "no recording" in call.failure_reason


def test_a_provider_refusing_our_request_fails_the_call_at_once(uploaded_call, simulator, sim, settings):
    providers = {name: dict(config) for name, config in settings.PROVIDERS.items()}
    providers["assemblyai"]["api_key"] = ""
    settings.PROVIDERS = providers
    tasks.transcribe_call_task.delay(uploaded_call.pk)
    uploaded_call.refresh_from_db()
    assert uploaded_call.status == Call.Status.FAILED
    assert "401" in uploaded_call.failure_reason
    assert sim.requests("assemblyai") == 1


def test_conversation_stats_measure_the_reps_share_monologues_and_questions():
    utterances = [
        {"speaker": "A", "start_ms": 0, "end_ms": 3000, "text": "How is it going? Any blockers?"},
        {"speaker": "A", "start_ms": 3000, "end_ms": 6000, "text": "Let me explain."},
        {"speaker": "B", "start_ms": 6000, "end_ms": 8000, "text": "Fine."},
    ]
    assert pipeline.conversation_stats(utterances) == {
        "talk_ratio": 0.75,
        "longest_monologue_seconds": 6,
        "question_count": 2,
    }


def test_beat_runs_the_outbox_flush_and_the_delayed_calls_sweep(settings):
    from calliq.celery import app

    app.loader.import_default_modules()
    for entry in ["flush-email-outbox", "resume-delayed-calls"]:
        assert settings.CELERY_BEAT_SCHEDULE[entry]["task"] in app.tasks
