"""The call pipeline's steps as plain functions: transcribe_call (AssemblyAI),
analyse_call (OpenAI), notify_rep (Resend, through the email outbox), and
what happens when a provider is down: delay_analysis marks a call delayed,
send_outbox sends stored emails once Resend answers again (and the outbox
also carries the admins' email when a webhook endpoint is disabled).

Each step is idempotent (a step already done returns what it made), talks to
its provider through the client given (so tasks, commands and tests choose
it), and never holds a database transaction open during an HTTP call."""

from __future__ import annotations

import datetime as dt
import logging

from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, CallAnalysis, OutboundEmail, Transcript
from calls.tenancy.models import Membership
from calls.webhooks.events import emit_call_completed, emit_call_failed
from calls.webhooks.models import WebhookEndpoint
from resilience.breaker import CircuitOpenError, breaker
from resilience.errors import ProviderError
from resilience.providers.assemblyai import AssemblyAIClient, utterances_from
from resilience.providers.openai import OpenAIClient
from resilience.providers.resend import ResendClient

logger = logging.getLogger("calliq.calls.pipeline")


class PipelineError(Exception):
    """A call cannot go through the pipeline as it is (no recording, no transcript)."""


def _set_status(call: Call, status: str, **fields: object) -> None:
    for name, value in fields.items():
        setattr(call, name, value)
    call.status = status
    call.save(update_fields=["status", "updated_at", *fields])


def transcribe_call(call: Call, *, client: AssemblyAIClient) -> Transcript:
    """Upload the recording, create the transcript job once (its id is kept on
    the Transcript row so a retry resumes it) and store the utterances.
    Raises TranscriptNotReady while AssemblyAI is still working."""
    existing = Transcript.objects.filter(call=call).first()
    if existing is not None and existing.utterances:
        return existing
    transcript = existing or Transcript(call=call)
    if not transcript.provider_id and not call.recording:
        raise PipelineError("the call has no recording to transcribe")
    _set_status(call, Call.Status.TRANSCRIBING)
    if not transcript.provider_id:
        with call.recording.open("rb") as audio:
            upload_url = client.upload(audio)  # streamed: a recording is never held in memory whole
        job = client.create_transcript(upload_url)
        transcript.provider_id = job["id"]
        transcript.save()
    body = client.wait_for_transcript(transcript.provider_id)
    transcript.utterances = utterances_from(body)
    transcript.language = (body.get("language_code") or "en")[:16]
    # The provider measures the audio; an upload only knows when the call began.
    duration = int(body.get("audio_duration") or 0) or call.duration_seconds
    with transaction.atomic():
        transcript.save(update_fields=["utterances", "language"])
        _set_status(call, Call.Status.ANALYZING, delayed_until=None, delay_reason="", duration_seconds=duration)
    return transcript


def conversation_stats(utterances: list[dict]) -> dict:
    """Talk ratio, longest monologue and questions asked by the rep, taken to
    be the first speaker (CallIQ's calls are placed by the rep)."""
    if not utterances:
        return {"talk_ratio": 0.0, "longest_monologue_seconds": 0, "question_count": 0}
    rep = utterances[0]["speaker"]
    talk = {"rep": 0, "all": 0}
    longest = current = 0
    previous = None
    questions = 0
    for u in utterances:
        length = max(u["end_ms"] - u["start_ms"], 0)
        talk["all"] += length
        if u["speaker"] == rep:
            talk["rep"] += length
            questions += u["text"].count("?")
        current = current + length if u["speaker"] == previous else length
        longest = max(longest, current)
        previous = u["speaker"]
    return {
        "talk_ratio": round(talk["rep"] / talk["all"], 4) if talk["all"] else 0.0,
        "longest_monologue_seconds": longest // 1000,
        "question_count": questions,
    }


def analyse_call(call: Call, *, client: OpenAIClient) -> CallAnalysis:
    """Ask the LLM for summary, sentiment, score, topics and action items, and
    store them with the talk statistics measured from the transcript."""
    existing = CallAnalysis.objects.filter(call=call).first()
    if existing is not None:
        return existing
    transcript = Transcript.objects.filter(call=call).first()
    if transcript is None or not transcript.utterances:
        raise PipelineError("the call has no transcript to analyse")
    if call.status != Call.Status.ANALYZING:
        _set_status(call, Call.Status.ANALYZING)
    result = client.analyse_transcript(transcript.text)
    stats = conversation_stats(transcript.utterances)
    with transaction.atomic():
        analysis, created = CallAnalysis.objects.get_or_create(
            call=call,
            defaults={
                "summary": result.summary,
                "sentiment": result.sentiment,
                "score": result.score,
                "topics": result.topics,
                "action_items": result.action_items,
                "model": result.model,
                **stats,
            },
        )
        _set_status(
            call,
            Call.Status.COMPLETED,
            score=analysis.score,
            sentiment=analysis.sentiment,
            talk_ratio=analysis.talk_ratio,
            delayed_until=None,
            delay_reason="",
            failure_reason="",
        )
        if created:  # a second run that finds the analysis made by the first announces nothing
            emit_call_completed(call)
    return analysis


def delay_analysis(call: Call, *, until: dt.datetime | None, reason: str) -> None:
    """Mark the call delayed: its next pipeline step is queued for `until`."""
    call.delayed_until = until or timezone.now() + dt.timedelta(seconds=60)
    call.delay_reason = reason[:300]
    call.save(update_fields=["delayed_until", "delay_reason", "updated_at"])


def fail_call(call: Call, *, reason: str) -> None:
    with transaction.atomic():
        # Read under a row lock: two workers failing the same call announce it once.
        current = Call.objects.select_for_update().filter(pk=call.pk).values_list("status", flat=True).first()
        newly_failed = current != Call.Status.FAILED
        _set_status(call, Call.Status.FAILED, failure_reason=reason[:300], delayed_until=None, delay_reason="")
        if newly_failed:
            emit_call_failed(call)


def queue_rep_email(call: Call) -> OutboundEmail | None:
    """Store the "your call was analysed" email in the outbox (once per call)."""
    rep = call.rep
    if rep is None or not rep.email:
        return None
    analysis = CallAnalysis.objects.filter(call=call).first()
    if analysis is None:
        return None
    lines = [
        f"Your call “{call.title}” has been analysed.",
        f"Score: {analysis.score}/100 · Sentiment: {analysis.sentiment:+.2f}",
        "",
        analysis.summary,
    ]
    if analysis.action_items:
        lines += ["", "Action items:", *(f"- {item}" for item in analysis.action_items)]
    email, _ = OutboundEmail.objects.get_or_create(
        idempotency_key=f"call-{call.pk}-analysed",
        defaults={
            "organization_id": call.organization_id,
            "call": call,
            "to_email": rep.email,
            "subject": f"Call analysed: {call.title}"[:200],
            "text": "\n".join(lines),
        },
    )
    return email


def _retry_at(email: OutboundEmail, exc: BaseException) -> dt.datetime:
    if isinstance(exc, CircuitOpenError) and exc.next_trial_at is not None:
        return exc.next_trial_at
    # 30 s, 60 s, 120 s … capped at an hour.
    return timezone.now() + dt.timedelta(seconds=min(30 * 2 ** max(email.attempts - 1, 0), 3600))


def send_email(email: OutboundEmail, *, client: ResendClient) -> bool:
    """Try to send one outbox email; True if it is sent. A provider outage
    leaves it pending for a later flush; a 4xx marks it failed."""
    if email.status != OutboundEmail.Status.PENDING:
        return email.status == OutboundEmail.Status.SENT
    email.attempts += 1
    try:
        provider_id = client.send_email(
            to=[email.to_email],
            subject=email.subject,
            text=email.text,
            html=email.html,
            idempotency_key=email.idempotency_key,
        )
    except (CircuitOpenError, ProviderError) as exc:
        retryable = isinstance(exc, CircuitOpenError) or exc.retryable
        email.last_error = str(exc)[:300]
        if retryable:
            email.next_attempt_at = _retry_at(email, exc)
        else:
            email.status = OutboundEmail.Status.FAILED
        email.save(update_fields=["attempts", "last_error", "next_attempt_at", "status"])
        logger.warning("email %s not sent (%s): %s", email.pk, "will retry" if retryable else "failed", exc)
        return False
    email.status = OutboundEmail.Status.SENT
    email.provider_id = provider_id
    email.sent_at = timezone.now()
    email.last_error = ""
    email.save(update_fields=["attempts", "status", "provider_id", "sent_at", "last_error"])
    return True


def notify_rep(call: Call, *, client: ResendClient) -> OutboundEmail | None:
    """Queue the rep's email in the outbox and try to send it now. With Resend
    down the email stays pending and send_outbox sends it later."""
    email = queue_rep_email(call)
    if email is not None:
        send_email(email, client=client)
    return email


def email_admins_endpoint_disabled(*, endpoint: WebhookEndpoint, reason: str, now: dt.datetime, **_: object) -> None:
    """calls.webhooks.delivery.endpoint_disabled's receiver (connected in
    CallsConfig.ready()): one outbox email to each admin of the endpoint's
    organization, stored in the disabling transaction, sent once it commits
    (or by the outbox flush while Resend is down)."""
    admins = Membership.objects.filter(
        organization_id=endpoint.organization_id, role=Membership.Role.ADMIN, user__is_active=True
    ).select_related("user")
    text = "\n".join(
        [
            "CallIQ has disabled one of your organization's webhook endpoints:",
            "",
            f"  {endpoint.url}",
            "",
            f"Why: {reason}",
            "",
            "No further events are sent to it. Once it answers again, enable it on its",
            f"settings page ({reverse('webhooks:detail', args=[endpoint.pk])}) and redeliver the events it missed.",
        ]
    )
    ids = []
    for membership in admins:
        if not membership.user.email:
            continue
        email, _ = OutboundEmail.objects.get_or_create(
            idempotency_key=f"webhook-{endpoint.pk}-disabled-{int(now.timestamp())}-{membership.user_id}",
            defaults={
                "organization_id": endpoint.organization_id,
                "to_email": membership.user.email,
                "subject": "A CallIQ webhook endpoint was disabled",
                "text": text,
            },
        )
        ids.append(email.pk)
    transaction.on_commit(lambda: _send_now(ids))


def _send_now(email_ids: list[int]) -> None:
    try:
        with ResendClient() as client:
            for email in OutboundEmail.objects.filter(pk__in=email_ids):
                send_email(email, client=client)
    except Exception:
        logger.exception("could not send emails %s now; the outbox flush will", email_ids)


def send_outbox(*, client: ResendClient, limit: int = 100) -> int:
    """Send due outbox emails; returns how many were sent. Each email is
    claimed with a conditional UPDATE (a lease), so two flushes running at
    once never send the same email; stops early when Resend's breaker is open."""
    sent = 0
    now = timezone.now()
    for email in OutboundEmail.objects.due(now).order_by("next_attempt_at", "id")[:limit]:
        lease = timezone.now() + dt.timedelta(minutes=2)
        claimed = OutboundEmail.objects.filter(
            pk=email.pk, status=OutboundEmail.Status.PENDING, next_attempt_at=email.next_attempt_at
        ).update(next_attempt_at=lease)
        if not claimed:
            continue
        email.next_attempt_at = lease
        if send_email(email, client=client):
            sent += 1
        elif breaker("resend").known_open():
            break  # every further send would be refused until the next trial
    return sent
