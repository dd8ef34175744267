"""Celery tasks of the call pipeline: ids in, the work done by calls.pipeline.

Every task is acknowledged late and idempotent (run twice, it does the work
once), so a worker dying mid-task loses nothing. A task that meets an open
breaker does not sleep: it re-queues itself with a countdown to the breaker's
next trial (and the call is marked delayed). Other provider outages are
retried with backoff a few times, then the call is marked failed; a provider
refusing our request (4xx) fails the call at once."""

from __future__ import annotations

import datetime as dt
import logging

from celery import Task, shared_task
from django.db import transaction
from django.utils import timezone

from calls import pipeline
from calls.models import Call
from resilience.breaker import CircuitOpenError, breaker
from resilience.errors import ProviderError
from resilience.providers.assemblyai import AssemblyAIClient, TranscriptNotReady
from resilience.providers.openai import OpenAIClient
from resilience.providers.resend import ResendClient

logger = logging.getLogger("calliq.calls.tasks")

PROVIDER_RETRIES = 5


def start_pipeline(call: Call) -> None:
    """Queue the pipeline for a stored call, once the transaction that stored it
    commits. Never raises into the caller: the call is already stored, so a
    broker that is down (or an in-process run that fails) leaves it delayed
    for resume_delayed_calls rather than turning the upload into an error."""
    call_id = call.pk
    transaction.on_commit(lambda: _queue_pipeline(call_id))


def _queue_pipeline(call_id: int) -> None:
    try:
        transcribe_call_task.delay(call_id)
    except Exception as exc:
        logger.exception("could not start the pipeline of call %s; it will be resumed", call_id)
        call = Call.objects.filter(pk=call_id).first()
        if call is not None:
            pipeline.delay_analysis(call, until=None, reason=f"Waiting to start: {type(exc).__name__}")


def _requeue(task: Task, call_id: int, countdown: float) -> None:
    # A new message rather than task.retry(): waiting for a breaker is not a
    # failure, so it must not use up the task's retries.
    if task.request.is_eager:
        # Run in-process (no broker): a countdown cannot wait, so the call stays
        # delayed and resume_delayed_calls picks it up when it is due.
        logger.info("call %s delayed %.1f s; resume_delayed_calls will pick it up", call_id, countdown)
        return
    task.apply_async(args=[call_id], countdown=countdown)


def breaker_wait(exc: BaseException) -> float | None:
    """Seconds until the next trial if the failing service's breaker is open
    (refused, or opened by this very failure); None for any other failure."""
    if isinstance(exc, CircuitOpenError):
        return exc.seconds_until_trial()
    if isinstance(exc, ProviderError) and breaker(exc.service).known_open():
        snap = breaker(exc.service).snapshot()
        if snap.forced or not snap.next_trial_ms:
            return 60.0
        return max((snap.next_trial_ms - snap.now_ms) / 1000, 0.05)
    return None


def _until(seconds: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(seconds=seconds)


def _pending_call(call_id: int, *, done: str) -> Call | None:
    call = Call.objects.filter(pk=call_id).first()
    if call is None:
        logger.info("call %s is gone; nothing to do", call_id)
        return None
    if call.status in (Call.Status.FAILED, Call.Status.COMPLETED) and done != "notify":
        return None
    return call


def _provider_unavailable(task: Task, call: Call, exc: CircuitOpenError | ProviderError, *, step: str) -> None:
    """The fallback when a provider fails: with its breaker open, the call is
    marked delayed and the task re-queued for the breaker's next trial;
    otherwise a retryable error is retried and any other fails the call."""
    if (wait := breaker_wait(exc)) is not None:
        pipeline.delay_analysis(call, until=_until(wait), reason=f"{step} delayed: {exc}")
        _requeue(task, call.pk, wait)
    else:
        _provider_failed(task, call, exc, step.lower())


def _provider_failed(task: Task, call: Call, exc: BaseException, step: str) -> None:
    if isinstance(exc, ProviderError) and exc.retryable and task.request.retries < PROVIDER_RETRIES:
        countdown = exc.retry_after or 10 * 2**task.request.retries  # 10 s, 20 s, 40 s …
        if task.request.is_eager:
            # In-process (no broker): a retry would raise into the web request
            # that stored the upload. The call waits instead, and
            # resume_delayed_calls retries it when it is due.
            pipeline.delay_analysis(call, until=_until(countdown), reason=f"{step.capitalize()} will be retried: {exc}")
            return
        raise task.retry(exc=exc, countdown=countdown, max_retries=PROVIDER_RETRIES)
    pipeline.fail_call(call, reason=f"{step} failed: {exc}")


@shared_task(bind=True, acks_late=True, max_retries=PROVIDER_RETRIES)
def transcribe_call_task(self: Task, call_id: int) -> None:
    call = _pending_call(call_id, done="transcribe")
    if call is None:
        return
    try:
        with AssemblyAIClient() as client:
            pipeline.transcribe_call(call, client=client)
    except TranscriptNotReady:
        _requeue(self, call_id, 5)
        return
    except (CircuitOpenError, ProviderError) as exc:
        _provider_unavailable(self, call, exc, step="Transcription")
        return
    except pipeline.PipelineError as exc:
        pipeline.fail_call(call, reason=str(exc))
        return
    analyse_call_task.delay(call_id)


@shared_task(bind=True, acks_late=True, max_retries=PROVIDER_RETRIES)
def analyse_call_task(self: Task, call_id: int) -> None:
    call = _pending_call(call_id, done="analyse")
    if call is None:
        return
    try:
        with OpenAIClient() as client:
            pipeline.analyse_call(call, client=client)
    except (CircuitOpenError, ProviderError) as exc:
        _provider_unavailable(self, call, exc, step="Analysis")
        return
    except pipeline.PipelineError as exc:
        pipeline.fail_call(call, reason=str(exc))
        return
    notify_rep_task.delay(call_id)


@shared_task(acks_late=True)
def notify_rep_task(call_id: int) -> None:
    call = _pending_call(call_id, done="notify")
    if call is None or call.status != Call.Status.COMPLETED:
        return
    with ResendClient() as client:
        pipeline.notify_rep(call, client=client)


@shared_task(acks_late=True)
def flush_email_outbox() -> int:
    """Send the outbox's due emails (Celery beat runs this every 30 s)."""
    with ResendClient() as client:
        return pipeline.send_outbox(client=client)


@shared_task(acks_late=True)
def resume_delayed_calls(limit: int = 500) -> int:
    """Queue the next step of delayed calls that are due (Celery beat runs this
    every minute): a safety net for re-queued messages lost with a broker."""
    due = Call.objects.filter(delayed_until__lte=timezone.now()).exclude(
        status__in=[Call.Status.COMPLETED, Call.Status.FAILED]
    )
    count = 0
    for call_id, status in due.values_list("id", "status")[:limit]:
        step = transcribe_call_task if status in (Call.Status.UPLOADED, Call.Status.TRANSCRIBING) else analyse_call_task
        step.delay(call_id)
        count += 1
    return count
