"""The error tracker: unhandled exceptions of web requests and Celery tasks
(and CSP violation reports, see csp.py) grouped by fingerprint into
resilience.models.ErrorGroup, with counts, first/last seen, affected
organizations and the last few scrubbed samples.

Fingerprint, first that applies:
1. a custom one: the exception carries `fingerprint` (a string or a list of strings);
2. the exception type + its in-app frames as `module:function` (no line
   numbers, so an edit elsewhere in the file does not split a group);
3. the exception type + its message with numbers, ids and quoted strings masked
   (an exception that never travelled through our code).

An event is scrubbed (scrub.py) before it leaves the process that saw it and
stored by the `record_error` task, off the request path. When the broker
cannot take the task the event is stored inline, and when the database cannot
either it is logged in full (scrubbed), so an error is never silently lost.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import sys
import traceback
from pathlib import Path
from types import TracebackType
from typing import Any

from celery import shared_task
from celery.signals import task_failure
from django.conf import settings
from django.core.signals import got_request_exception
from django.db import DatabaseError, IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from resilience.models import ErrorGroup, ErrorGroupOrganization
from resilience.monitoring.scrub import FILTERED, scrub, scrub_sentry_event, scrub_text

logger = logging.getLogger("calliq.errors")

RECORD_TASK = "resilience.monitoring.record_error"
MAX_FRAMES = 30
# Request headers worth keeping in a sample; everything else (cookies,
# authorization, forwarded addresses...) is never read.
KEPT_HEADERS = ("User-Agent", "Referer", "Accept", "Content-Type", "Content-Length", "Host", "HX-Request")
FORM_TYPES = {"application/x-www-form-urlencoded", "multipart/form-data"}
MAX_FIELD = 200  # longer free-text values (notes, transcripts pasted into a form) are dropped
# Form fields whose values a sample keeps: short choices that say what was
# attempted and hold nothing personal. Every other field keeps its name only,
# and a query string only its parameter names.
SAFE_FORM_FIELDS = frozenset({"action", "outcome", "status", "expires_in", "scope", "sort", "size", "mode"})

QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
UUID = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", re.IGNORECASE)
HEX = re.compile(r"\b(?=[a-f]*\d)[0-9a-f]{8,}\b", re.IGNORECASE)
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?")
ADDRESS = re.compile(r"\b0x[0-9a-f]+\b", re.IGNORECASE)


def normalise_message(message: str) -> str:
    """The message with what varies between occurrences of one bug masked."""
    message = scrub_text(message)
    message = QUOTED.sub("<str>", message)
    message = UUID.sub("<uuid>", message)
    message = ADDRESS.sub("<addr>", message)
    message = HEX.sub("<hex>", message)
    return NUMBER.sub("<n>", message)[:300]


def _is_in_app(filename: str) -> bool:
    if "site-packages" in filename or "dist-packages" in filename or filename.startswith("<"):
        return False
    try:
        return Path(filename).resolve().is_relative_to(Path(settings.BASE_DIR).resolve())
    except (OSError, ValueError):
        return False


def _frames(tb: TracebackType | None) -> list[dict[str, Any]]:
    frames = []
    for frame, lineno in traceback.walk_tb(tb):
        code = frame.f_code
        frames.append(
            {
                "module": frame.f_globals.get("__name__", "?"),
                "function": code.co_qualname,
                "lineno": lineno,
                "in_app": _is_in_app(code.co_filename),
            }
        )
    return frames[-MAX_FRAMES:]


def exception_type(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def fingerprint_parts(exc: BaseException, frames: list[dict[str, Any]] | None = None) -> list[str]:
    custom = getattr(exc, "fingerprint", None)
    if isinstance(custom, str) and custom:
        return ["custom", custom]
    if isinstance(custom, list | tuple) and custom and all(isinstance(part, str) for part in custom):
        return ["custom", *custom]
    frames = _frames(exc.__traceback__) if frames is None else frames
    in_app = [f"{frame['module']}:{frame['function']}" for frame in frames if frame["in_app"]]
    if in_app:
        return [exception_type(exc), *in_app]
    return [exception_type(exc), normalise_message(str(exc))]


def hash_parts(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def _culprit(frames: list[dict[str, Any]]) -> str:
    in_app = [frame for frame in frames if frame["in_app"]] or frames
    return f"{in_app[-1]['module']}:{in_app[-1]['function']}" if in_app else ""


def organization_id_of(request: HttpRequest | None) -> int | None:
    # Read generically: resilience knows no Organization model.
    pk = getattr(getattr(request, "organization", None), "pk", None)
    return pk if isinstance(pk, int) and not isinstance(pk, bool) else None


def _short_values(data: Any) -> dict[str, Any]:
    """Form fields or task arguments: names kept, values scrubbed, long free text dropped."""
    kept: dict[str, Any] = {}
    items = data.lists() if hasattr(data, "lists") else dict(data).items()
    for key, value in items:
        values = value if isinstance(value, list) else [value]
        kept[str(key)] = [v if not isinstance(v, str) or len(v) <= MAX_FIELD else FILTERED for v in values]
    return scrub(kept)


def _form_fields(data: Any) -> dict[str, Any]:
    """Form field names; values only for SAFE_FORM_FIELDS, scrubbed by default."""
    return {name: values if name in SAFE_FORM_FIELDS else FILTERED for name, values in _short_values(data).items()}


def _without_query(url: str) -> str:
    """A Referer without its query string or fragment (they can carry tokens and personal data)."""
    return url.split("?", 1)[0].split("#", 1)[0]


def request_sample(request: HttpRequest) -> dict[str, Any]:
    match = getattr(request, "resolver_match", None)
    user = getattr(request, "user", None)
    sample: dict[str, Any] = {
        "source": "web",
        "method": request.method,
        "route": getattr(match, "route", None),
        "path": request.path,
        "query": sorted(request.GET.keys()),
        "headers": {name: request.headers[name] for name in KEPT_HEADERS if name in request.headers},
        "user_id": user.pk if getattr(user, "is_authenticated", False) else None,
        "organization_id": organization_id_of(request),
    }
    if "Referer" in sample["headers"]:
        sample["headers"]["Referer"] = _without_query(sample["headers"]["Referer"])
    if request.method == "POST" and request.content_type in FORM_TYPES:
        try:
            sample["form"] = _form_fields(request.POST)
        except Exception:  # an unreadable body must not hide the original error
            sample["form"] = FILTERED
    return scrub(sample)


def exception_event(exc: BaseException, context: dict[str, Any], organization_id: int | None = None) -> dict:
    """A scrubbed, JSON-serialisable event for one exception."""
    frames = _frames(exc.__traceback__)
    parts = fingerprint_parts(exc, frames)
    name = exception_type(exc)
    sample = context | {
        "at": timezone.now().isoformat(),
        "exception": {"type": name, "message": scrub_text(str(exc)), "frames": frames},
    }
    return {
        "fingerprint": hash_parts(parts),
        "parts": parts,
        "kind": ErrorGroup.Kind.EXCEPTION,
        "title": f"{name}: {normalise_message(str(exc))}"[:300],
        "culprit": _culprit(frames)[:300],
        "organization_id": organization_id,
        "at": sample["at"],
        "sample": scrub(sample),
    }


def store_event(event: dict) -> ErrorGroup:
    """Count one event into its group (created on first sight); a resolved
    group that recurs becomes a regression; an ignored one stays ignored."""
    at = parse_datetime(event["at"]) or timezone.now()
    with transaction.atomic():
        group = ErrorGroup.objects.select_for_update().filter(fingerprint=event["fingerprint"]).first()
        if group is None:
            try:
                with transaction.atomic():
                    group = ErrorGroup.objects.create(
                        fingerprint=event["fingerprint"],
                        fingerprint_parts=event.get("parts", []),
                        kind=event.get("kind", ErrorGroup.Kind.EXCEPTION),
                        title=event["title"][:300],
                        culprit=event.get("culprit", "")[:300],
                        first_seen=at,
                        last_seen=at,
                    )
            except IntegrityError:  # another process created it first
                group = ErrorGroup.objects.select_for_update().get(fingerprint=event["fingerprint"])
        group.count += 1
        group.first_seen = min(group.first_seen, at)
        group.last_seen = max(group.last_seen, at)
        group.samples = [event["sample"], *group.samples][: ErrorGroup.SAMPLES_KEPT]
        if group.state == ErrorGroup.State.RESOLVED:
            group.state = ErrorGroup.State.REGRESSED
        group.save(update_fields=["count", "first_seen", "last_seen", "samples", "state"])
        if event.get("organization_id") is not None:
            ErrorGroupOrganization.objects.bulk_create(
                [ErrorGroupOrganization(group=group, organization_id=event["organization_id"])],
                ignore_conflicts=True,
            )
    return group


@shared_task(name=RECORD_TASK, acks_late=True, autoretry_for=(DatabaseError,), retry_backoff=True, max_retries=10)
def record_error(event: dict) -> None:
    store_event(event)


def _store_or_log(event: dict) -> None:
    try:
        store_event(event)
    except Exception:
        logger.exception("error tracker: could not store event %s", json.dumps(event, default=str)[:8000])


def deliver(event: dict) -> None:
    """Hand the event to the worker; store it here when the broker is away."""
    if record_error.app.conf.task_always_eager:  # no worker (tests, degraded mode): store now
        _store_or_log(event)
        return
    try:
        record_error.delay(event)
    except Exception:
        logger.warning("error tracker: task queue unavailable, storing the event in this process")
        _store_or_log(event)


def capture_exception(
    exc: BaseException,
    *,
    request: HttpRequest | None = None,
    context: dict | None = None,
    organization_id: int | None = None,
) -> None:
    """Record one unhandled exception, at most once however many hooks see it
    (an eager task's failure also reaches the request that ran it)."""
    if getattr(exc, "_calliq_captured", False):
        return
    with contextlib.suppress(AttributeError):
        exc._calliq_captured = True  # type: ignore[attr-defined]
    try:
        sample = request_sample(request) if request is not None else {}
        if request is not None:
            organization_id = organization_id_of(request)
        deliver(exception_event(exc, sample | (context or {}), organization_id=organization_id))
    except Exception:  # the tracker must never replace the original error with its own
        logger.exception("error tracker: could not capture %r", exc)


def on_request_exception(sender: object, request: HttpRequest | None = None, **kwargs: Any) -> None:
    exc = sys.exc_info()[1]
    if exc is not None:
        capture_exception(exc, request=request)


def on_task_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    args: Any = None,
    kwargs: Any = None,
    **extra: Any,
) -> None:
    name = getattr(sender, "name", "?")
    if exception is None or name == RECORD_TASK:
        return  # the tracker's own task retries by itself and logs its failures
    context = {
        "source": "task",
        "task": name,
        "task_id": task_id,
        "args": _short_values({str(i): a for i, a in enumerate(args or [])}),
        "kwargs": _short_values(kwargs or {}),
    }
    organization_id = (kwargs or {}).get("organization_id")
    capture_exception(
        exception, context=context, organization_id=organization_id if isinstance(organization_id, int) else None
    )


def sentry_before_send(event: dict, hint: dict | None) -> dict:
    """Our grouping and our scrubber for what sentry-sdk sends."""
    exc_info = (hint or {}).get("exc_info")
    if exc_info and exc_info[1] is not None:
        event["fingerprint"] = fingerprint_parts(exc_info[1])
    return scrub_sentry_event(event, hint)


def init_sentry(dsn: str, *, environment: str = "", release: str = "") -> None:
    """Send errors to Sentry as well (SENTRY_DSN): no personal data (the default), no local
    variables, no request bodies, no tracing; every event through our scrubber."""
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment or None,
        release=release or None,
        before_send=sentry_before_send,
        include_local_variables=False,
        max_request_body_size="never",
        traces_sample_rate=0,
        integrations=[DjangoIntegration(), CeleryIntegration()],
    )


def connect() -> None:
    """Wire the hooks (ResilienceConfig.ready)."""
    got_request_exception.connect(on_request_exception, dispatch_uid="calliq-error-tracker")
    task_failure.connect(on_task_failure, dispatch_uid="calliq-error-tracker", weak=False)
    if settings.SENTRY_DSN:
        init_sentry(settings.SENTRY_DSN, environment=settings.SENTRY_ENVIRONMENT, release=settings.SENTRY_RELEASE)
