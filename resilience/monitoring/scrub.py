"""One scrubber for everything the error tracker keeps or sends away: stored
samples, CSP reports and the events sentry-sdk would ship (its before_send).

Two nets, because either alone misses things: by key name (a header, form
field, cookie or JSON key that says what it holds: Authorization, Cookie,
password, token, csrf, session, transcript...) and by value pattern (an email
address, a Bearer credential, a JWT, a long random-looking string, a
`name=value` pair with a secret name inside a query string or cookie header),
so a secret that reached an exception message or a URL is masked too.

Written here rather than taken from a library: sentry-sdk's EventScrubber
works on Sentry events only and by key name only; we need the same rules for
our own samples and for values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

FILTERED = "[Filtered]"
MAX_DEPTH = 8
MAX_STRING = 1024

# A key containing any of these (case-insensitive, "-" and "_" ignored) holds
# a secret or personal text: its value is never kept.
SENSITIVE_KEY_PARTS = (
    "authorization",
    "cookie",
    "password",
    "passwd",
    "pwd",
    "secret",
    "token",
    "csrf",
    "xsrf",
    "session",
    "apikey",
    "privatekey",
    "credential",
    "signature",
    "email",
    "transcript",
    "utterance",
    "segments",
    "summary",
    "actionitems",
    "remoteaddr",
    "forwardedfor",
    "realip",
)

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
BEARER = re.compile(r"\b(Bearer|Basic|Token)\s+[\w\-.~+/=:]+", re.IGNORECASE)
JWT = re.compile(r"\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]{5,}")
# Long runs of key-like characters (API keys, session ids, hex digests): 24+
# characters with at least one digit, so ordinary words survive.
LONG_SECRET = re.compile(r"\b(?=[A-Za-z_\-]*\d)[A-Za-z0-9_\-]{24,}\b")
# name=value inside query strings, cookie headers and messages, where the
# name says it is a secret.
SECRET_PAIR = re.compile(
    r"(?P<name>[\w\-]*(?:"
    + "|".join("[-_]?".join(part) for part in SENSITIVE_KEY_PARTS)
    + r")[\w\-]*)(?P<sep>\s*[=:]\s*)(?P<value>[^\s&;,'\"]+)",
    re.IGNORECASE,
)


# Identifiers Sentry needs intact (random-looking by design, never personal).
SENTRY_IDS = frozenset({"event_id", "trace_id", "span_id", "parent_span_id", "sdk", "modules", "release"})


def is_sensitive_key(key: object) -> bool:
    normalised = str(key).lower().replace("-", "").replace("_", "")
    return any(part in normalised for part in SENSITIVE_KEY_PARTS)


def scrub_text(text: str) -> str:
    """Mask secrets and emails inside free text (messages, URLs, header values)."""
    text = SECRET_PAIR.sub(lambda m: f"{m['name']}{m['sep']}{FILTERED}", text)
    text = BEARER.sub(lambda m: f"{m[1]} {FILTERED}", text)
    text = JWT.sub(FILTERED, text)
    text = EMAIL.sub(FILTERED, text)
    text = LONG_SECRET.sub(FILTERED, text)
    if len(text) > MAX_STRING:
        text = text[:MAX_STRING] + "…"
    return text


def scrub(value: Any, depth: int = 0) -> Any:
    """A scrubbed copy of any JSON-like structure (the original is untouched)."""
    if depth > MAX_DEPTH:
        return FILTERED
    if isinstance(value, Mapping):
        return {str(key): FILTERED if is_sensitive_key(key) else scrub(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple):
        # Sentry sends headers as [name, value] pairs.
        if len(value) == 2 and isinstance(value[0], str) and is_sensitive_key(value[0]):
            return [value[0], FILTERED]
        return [scrub(item, depth + 1) for item in value]
    if isinstance(value, str):
        return scrub_text(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    return scrub_text(repr(value))


def scrub_sentry_event(event: dict, hint: dict | None = None) -> dict:
    """sentry-sdk's before_send: the same rules as our stored samples. Local
    variables and request bodies are dropped outright (they can hold anything)."""
    request = event.get("request")
    if isinstance(request, dict):
        request.pop("data", None)
        request.pop("cookies", None)
        request.pop("env", None)
    event.pop("user", None)
    for exception in (event.get("exception") or {}).get("values") or []:
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    for thread in (event.get("threads") or {}).get("values") or []:
        for frame in (thread.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    # Breadcrumbs may carry SQL parameters and log messages with personal data.
    event.pop("breadcrumbs", None)
    kept = {key: event.pop(key) for key in SENTRY_IDS if key in event}
    contexts = event.get("contexts") or {}
    trace = contexts.pop("trace", None) if isinstance(contexts, dict) else None
    scrubbed = scrub(event) | kept
    if trace is not None:
        scrubbed.setdefault("contexts", {})["trace"] = {
            key: item if key in SENTRY_IDS else scrub(item) for key, item in trace.items()
        }
    return scrubbed
