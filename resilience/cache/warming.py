"""Cache warming: request the registered "warmable" views as an organization's
members would, through the full middleware stack, so @cached_view stores the
same entries a real request would read.

Apps register what is worth warming (URL name, URL kwargs, query variants);
the warm_cache command, the admin's "warm now" and the Celery beat task all
call warm(). Entries are per organization and user, so warming runs for each
organization's members, most senior and most recently active first, up to a
bound. It signs members in with a session of its own built without
django.contrib.auth.login(): login() would fire user_logged_in and bump the
user's generation, discarding the very entries it warms. Idempotent: a second
run finds HITs and stores nothing new.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING

from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.auth.models import User
from django.db.models import F
from django.urls import reverse

from calls.tenancy.middleware import ORGANIZATION_SESSION_KEY
from calls.tenancy.models import Membership, Organization

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


def register_defaults() -> None:
    # The dashboard's first page in its default sort (full page and the rows
    # partial), and the analytics dashboard for its default ranges.
    register_warmable("calls", "calls:list", htmx=True)
    register_warmable("analytics", "analytics:dashboard", queries=({"days": "7"}, {"days": "30"}, {"days": "90"}))


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
    organization: Organization
    user: User
    url: str
    htmx: bool


def members_to_warm(organization: Organization, max_users: int) -> list[User]:
    memberships = (
        Membership.objects.filter(organization=organization, user__is_active=True)
        .select_related("user")
        .order_by(F("user__last_login").desc(nulls_last=True), "user_id")
    )
    order = {Membership.Role.ADMIN: 0, Membership.Role.MANAGER: 1, Membership.Role.REP: 2}
    ranked = sorted(memberships, key=lambda m: order.get(m.role, 3))
    return [m.user for m in ranked[:max_users]]


def plan(
    organizations: Iterable[Organization], *, only: Iterable[str] | None = None, max_users: int = 10
) -> Iterator[WarmRequest]:
    targets = warmables(only)
    for organization in organizations:
        for user in members_to_warm(organization, max_users):
            for warmable in targets:
                base = reverse(warmable.url_name)
                for query in warmable.queries:
                    url = base + ("?" + "&".join(f"{k}={v}" for k, v in sorted(query.items())) if query else "")
                    yield WarmRequest(organization, user, url, htmx=False)
                    if warmable.htmx:
                        yield WarmRequest(organization, user, url, htmx=True)


def _client_for(user: User, organization: Organization) -> tuple[Client, object]:
    # Imported here: django.test is not worth loading in every web process for a command.
    from django.test import Client

    host = next((h for h in settings.ALLOWED_HOSTS if h and "*" not in h and not h.startswith(".")), "localhost")
    client = Client(SERVER_NAME=host.strip("[]"), secure=bool(getattr(settings, "SECURE_SSL_REDIRECT", False)))
    store = import_module(settings.SESSION_ENGINE).SessionStore()
    store[SESSION_KEY] = user._meta.pk.value_to_string(user)
    store[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store[ORGANIZATION_SESSION_KEY] = organization.pk
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
    sessions: dict[tuple[int, int], tuple[Client, object]] = {}
    try:
        for item in requests:
            key = (item.organization.pk, item.user.pk)
            if key not in sessions:
                sessions[key] = _client_for(item.user, item.organization)
            client = sessions[key][0]
            headers = {"HX-Request": "true"} if item.htmx else {}
            response = client.get(item.url, headers=headers)
            status = response.get("X-Cache")
            if response.status_code != 200:
                report.failed += 1
                report.failures.append(
                    f"{item.organization.slug} {item.user.get_username()} {item.url}: {response.status_code}"
                )
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


def warm_organizations(
    *, org_slug: str | None = None, only: Iterable[str] | None = None, max_users: int = 10
) -> WarmReport:
    """Warm every organization (or one, by slug). The Celery task and the admin call this."""
    organizations = Organization.objects.order_by("pk")
    if org_slug:
        organizations = organizations.filter(slug=org_slug)
    return warm(plan(organizations, only=only, max_users=max_users))
