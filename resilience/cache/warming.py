"""Cache warming: request the registered "warmable" views as the people who
read them would, through the full middleware stack, so @cached_view stores
the same entries a real request would read.

Apps register from their AppConfig.ready() what is worth warming
(register_warmable: an area, a URL name, query variants, whether to warm the
htmx partial too) and who to warm it as (register_audience: a function that
turns a scope, e.g. an organization slug, and a bound into WarmAs rows: a
user plus the session data the app's middleware expects). Nothing here knows
a domain model. The warm_cache command, the admin's "warm now" and the Celery
task all call warm(). Users are signed in with a session of our own built
without django.contrib.auth.login(): login() would fire user_logged_in and
bump the user's generation, discarding the very entries it warms.
Idempotent: a second run finds HITs and stores nothing new.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, load_backend
from django.contrib.auth.base_user import AbstractBaseUser
from django.urls import reverse

if TYPE_CHECKING:
    from django.test import Client


@dataclass(frozen=True)
class Warmable:
    area: str  # what --only selects, e.g. "calls" or "analytics"
    url_name: str
    queries: tuple[dict[str, str], ...] = ({},)
    htmx: bool = False  # also warm the htmx partial of each variant


_registry: dict[str, Warmable] = {}


def register_warmable(
    area: str, url_name: str, *, queries: Iterable[dict[str, str]] = ({},), htmx: bool = False
) -> None:
    """Register a view (by URL name, no URL kwargs) to warm. Re-registering replaces."""
    _registry[url_name] = Warmable(area=area, url_name=url_name, queries=tuple(queries), htmx=htmx)


def warmables(only: Iterable[str] | None = None) -> list[Warmable]:
    areas = set(only) if only else None
    return [w for w in _registry.values() if areas is None or w.area in areas]


class UnknownScope(ValueError):
    """The audience does not know the scope asked for (its message is for people)."""


@dataclass(frozen=True)
class WarmAs:
    """One reader to warm pages as: `scope` and `who` label reports."""

    scope: str
    who: str
    user: AbstractBaseUser
    session: tuple[tuple[str, Any], ...] = ()  # extra session data, e.g. the chosen organization


Audience = Callable[[str | None, int], Iterable[WarmAs]]
_audience: list[Audience] = []


def register_audience(audience: Audience) -> None:
    """Who warming reads as: audience(scope or None, max_users) -> WarmAs rows,
    raising UnknownScope for a scope it does not know. One audience (the last registered)."""
    _audience[:] = [audience]


@dataclass
class WarmReport:
    warmed: int = 0  # stored now (MISS)
    already_warm: int = 0  # HIT or STALE
    not_cached: int = 0  # answered 200 without X-Cache: the view has no @cached_view
    failed: int = 0  # any other status
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def requests(self) -> int:
        return self.warmed + self.already_warm + self.not_cached + self.failed


@dataclass(frozen=True)
class WarmRequest:
    reader: WarmAs
    url: str
    htmx: bool


def plan(scope: str | None = None, *, only: Iterable[str] | None = None, max_users: int = 10) -> Iterator[WarmRequest]:
    """Every request to make (UnknownScope when the audience does not know `scope`)."""
    targets = warmables(only)
    readers = [reader for audience in _audience for reader in audience(scope, max_users)]
    for reader in readers:
        for warmable in targets:
            base = reverse(warmable.url_name)
            for query in warmable.queries:
                url = base + ("?" + "&".join(f"{k}={v}" for k, v in sorted(query.items())) if query else "")
                yield WarmRequest(reader, url, htmx=False)
                if warmable.htmx:
                    yield WarmRequest(reader, url, htmx=True)


def _session_backend() -> str:
    # The first backend that can restore a user from the session, as Client.force_login
    # picks it: a throttling backend such as axes' comes first and has no get_user.
    for path in settings.AUTHENTICATION_BACKENDS:
        if hasattr(load_backend(path), "get_user"):
            return path
    raise LookupError("no AUTHENTICATION_BACKENDS entry can restore a user from a session")


def _client_for(reader: WarmAs) -> tuple[Client, object]:
    # Imported here: django.test is not worth loading in every web process for a command.
    from django.test import Client

    host = next((h for h in settings.ALLOWED_HOSTS if h and "*" not in h and not h.startswith(".")), "localhost")
    client = Client(SERVER_NAME=host.strip("[]"), secure=bool(getattr(settings, "SECURE_SSL_REDIRECT", False)))
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    user = reader.user
    store[SESSION_KEY] = user._meta.pk.value_to_string(user)
    store[BACKEND_SESSION_KEY] = _session_backend()
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    for name, value in reader.session:
        store[name] = value
    store.save()
    client.cookies[settings.SESSION_COOKIE_NAME] = store.session_key
    return client, store


def warm(
    requests: Iterable[WarmRequest],
    *,
    progress: Callable[[WarmRequest], None] | None = None,
) -> WarmReport:
    report = WarmReport()
    start = time.perf_counter()
    sessions: dict[WarmAs, tuple[Client, object]] = {}
    try:
        for item in requests:
            key = item.reader
            if key not in sessions:
                sessions[key] = _client_for(item.reader)
            client = sessions[key][0]
            headers = {"HX-Request": "true"} if item.htmx else {}
            response = client.get(item.url, headers=headers)
            status = response.get("X-Cache")
            if response.status_code != 200:
                report.failed += 1
                report.failures.append(f"{item.reader.scope} {item.reader.who} {item.url}: {response.status_code}")
            elif status == "MISS":
                report.warmed += 1
            elif status in ("HIT", "STALE"):
                report.already_warm += 1
            else:
                report.not_cached += 1
            if progress is not None:
                progress(item)
    finally:
        for _client, store in sessions.values():
            store.delete()
    report.seconds = time.perf_counter() - start
    return report


def warm_scope(*, scope: str | None = None, only: Iterable[str] | None = None, max_users: int = 10) -> WarmReport:
    """Warm every registered view for the audience of `scope` (None: everyone).
    The Celery task and the admin call this."""
    return warm(plan(scope, only=only, max_users=max_users))
