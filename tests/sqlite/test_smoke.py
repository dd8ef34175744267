"""The first-run database: every page and API endpoint, the demo seeding and
the analytics rollups work on SQLite, the default of `make run`.

Marked `sqlite`: scripts/test.sh runs these (with the other tests marked so:
the query-string fuzz, the keyset property test, the rollup equivalence) a
second time on a fresh SQLite file after the PostgreSQL run. They hold on
PostgreSQL as well, so the first run checks the same statements there.

Between them they run every `connection.vendor` branch's SQLite side:
search (calls.models.SearchContains), the table total without a planner
estimate (calls.selection.table_summary), seeding without COPY or sequences
(calls.demo), the rollups rebuilt through Python instead of INSERT … SELECT
and topics counted in Python (analytics.rollups), the raw reference's topic
counts (tests/analytics/raw_reference.py) and the health check's vendor name.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from analytics.models import DailyRollup
from analytics.report import AnalyticsParams, comprehensive_analytics
from analytics.rollups import local_day
from calls.models import Call, CallSelection
from calls.tenancy.models import ApiToken, Membership, Organization
from calls.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookEvent
from resilience.models import ErrorGroup
from resilience.monitoring.errors import capture_exception
from tests import factories
from tests.analytics.raw_reference import raw_comprehensive_analytics
from tests.calliq.test_security_headers import inline_code

pytestmark = pytest.mark.sqlite

# Named route → (the fixture ids its path takes, status for a signed-in manager, status for staff).
# POST-only routes answer a GET with 405; their POSTs are exercised below (the webhook
# actions in tests/calls/webhooks, the beacons in tests/resilience).
ROUTES: dict[str, tuple[tuple[str, ...], int, int]] = {
    "home": ((), 302, 302),
    "login": ((), 302, 302),  # already signed in: on to the app
    "logout": ((), 405, 405),
    "tokens": ((), 200, 200),
    "token_revoke": (("token",), 405, 405),
    "switch_organization": ((), 405, 405),
    "calls:list": ((), 200, 200),
    "calls:upload": ((), 200, 200),
    "calls:search": ((), 200, 200),  # the empty search box
    "calls:select": ((), 405, 405),
    "calls:export": ((), 405, 405),
    "calls:bulk_outcome": ((), 405, 405),
    "calls:bulk_delete": ((), 200, 200),
    "calls:detail": (("call",), 200, 200),
    "calls:recording": (("call",), 403, 403),  # no signature (the signed link is followed below)
    "calls:recording_link": (("call",), 200, 200),
    "webhooks:list": ((), 403, 200),  # organization admins only
    "webhooks:detail": (("endpoint",), 403, 200),
    "webhooks:edit": (("endpoint",), 403, 200),
    "webhooks:delete": (("endpoint",), 403, 200),
    "webhooks:rotate": (("endpoint",), 405, 405),
    "webhooks:test": (("endpoint",), 405, 405),
    "webhooks:redeliver": (("endpoint", "delivery"), 405, 405),
    "analytics:dashboard": ((), 200, 200),
    "analytics:business": ((), 403, 200),
    "monitoring:overview": ((), 302, 200),  # staff only: a manager is sent to the admin sign-in
    "monitoring:health": ((), 200, 200),
    "monitoring:errors": ((), 302, 200),
    "monitoring:error": (("error",), 302, 200),
    "monitoring:rum": ((), 302, 200),
    "monitoring:rum-beacon": ((), 405, 405),
    "monitoring:csp-report": ((), 405, 405),
    "monitoring:routes": ((), 302, 200),
    "monitoring:slow": ((), 302, 200),
    "monitoring:alerts": ((), 302, 200),
    "monitoring:business": ((), 302, 200),
    "metrics": ((), 403, 200),  # staff or the monitoring token
    "monitoring_api:metrics": ((), 403, 200),
    "openapi": ((), 200, 200),
    "healthz": ((), 200, 200),
    "readyz": ((), 200, 200),
    "calls_api:list": ((), 200, 200),
    "calls_api:search": ((), 400, 400),  # no query: a 400 that says so
    "calls_api:detail": (("call",), 200, 200),
    "analytics_api:comprehensive": ((), 200, 200),
}


def named_routes(patterns: list, namespace: str | None = None) -> list[tuple[str, URLPattern]]:
    """Every named route outside the admin site (walked separately, through its registry)."""
    found = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if pattern.namespace == "admin":
                continue
            inner = ":".join(n for n in (namespace, pattern.namespace) if n) or None
            found += named_routes(pattern.url_patterns, inner)
        elif pattern.name:
            found.append((f"{namespace}:{pattern.name}" if namespace else pattern.name, pattern))
    return found


@pytest.fixture
def staff_member(org: Organization) -> Membership:
    return factories.make_membership(
        org, role=Membership.Role.ADMIN, user=factories.make_user(is_staff=True, is_superuser=True)
    )


@pytest.fixture
def calls(org: Organization, member: Membership) -> list[Call]:
    """Analysed and unanalysed calls, searchable, over a few days."""
    made = []
    for n in range(12):
        call = factories.make_call(
            org,
            rep=member.user,
            title=f"Renewal {n} with Initech",
            score=None if n % 4 == 0 else 8 * n,
            sentiment=None if n % 4 == 0 else (n - 6) / 6,
            outcome=["won", "lost", ""][n % 3],
            started_at=factories.at(2026, 3, 1 + n % 5, 9 + n),
        )
        if call.score is not None:
            factories.make_analysis(call, score=call.score, sentiment=call.sentiment, topics=["pricing", "demo"])
        made.append(call)
    return made


@pytest.fixture
def route_ids(settings, tmp_path, member: Membership, calls: list[Call]) -> dict[str, int]:
    """The objects the routes' paths name: a call with a recording, a token,
    a webhook endpoint with a delivery, an error group."""
    settings.MEDIA_ROOT = tmp_path
    org = member.organization
    calls[1].recording.save("call.wav", ContentFile(b"RIFF" + bytes(2000)))
    token = ApiToken.issue(user=member.user, organization=org, name="smoke")[0]
    endpoint, _ = WebhookEndpoint.create_with_secret(
        organization=org, url="https://hooks.example.com/calliq", description="CRM", events=["call.completed"]
    )
    event = WebhookEvent.objects.create(organization=org, msg_id="msg_smoke", type="call.completed", body="{}")
    delivery = WebhookDelivery.objects.create(event=event, endpoint=endpoint)
    try:
        {}["missing"]
    except KeyError as exc:
        capture_exception(exc)
    return {
        "call": calls[1].pk,
        "token": token.pk,
        "endpoint": endpoint.pk,
        "delivery": delivery.pk,
        "error": ErrorGroup.objects.get().pk,
    }


@pytest.mark.parametrize("role", ["manager", "staff"])
def test_every_route_answers_as_documented_for_a_manager_and_for_staff(client, member, staff_member, route_ids, role):
    client.force_login((member if role == "manager" else staff_member).user)
    for name, pattern in named_routes(get_resolver().url_patterns):
        args = [route_ids[key] for key in ROUTES[name][0]] if name in ROUTES else []
        if pattern.pattern.converters and not args:
            pytest.fail(f"{name} takes arguments: add it to ROUTES")
        response = client.get(reverse(name, args=args))
        if name in ROUTES:
            expected = ROUTES[name][1 if role == "manager" else 2]
            assert response.status_code == expected, f"{name}: {response.status_code}"
        else:
            # A route added since (another team's): it must answer, and not with a 5xx.
            assert response.status_code < 500, f"{name}: {response.status_code}"
        if response.get("Content-Type", "").startswith("text/html") and not response.streaming:
            assert inline_code(response.text) == [], name
    link = client.get(reverse("calls:recording_link", args=[route_ids["call"]])).json()["url"]
    assert client.get(link).status_code == 200  # the recording, through its signed link


def test_the_calls_table_filters_searches_sorts_and_pages_both_ways(signed_in, calls):
    url = reverse("calls:list")
    assert "Renewal 5 with" in signed_in.get(url, {"q": "renewal 5"}).text
    assert "Renewal 6 with" not in signed_in.get(url, {"q": "renewal 5"}).text
    for sort in ("score", "-score", "sentiment", "-sentiment", "duration", "-started"):
        first = signed_in.get(url, {"sort": sort, "size": 25, "outcome": "won", "sentiment": "positive"})
        assert first.status_code == 200
    page = signed_in.get(url, {"sort": "-score", "size": 25})
    titles = list(dict.fromkeys(re.findall(r"Renewal \d+ with", page.text)))  # each row names its call twice
    assert len(titles) == 12
    # Unanalysed calls come last in either direction.
    assert titles[-3:] == sorted(titles[-3:], key=lambda t: -int(t.split()[1]))
    api = signed_in.get(reverse("calls_api:list"), {"sort": "score", "size": 25}).json()
    assert api["total"] == {"value": 12, "exact": True}
    assert [row["id"] for row in api["results"]][-3:] == [calls[0].pk, calls[4].pk, calls[8].pk]


def test_select_all_matching_then_export_set_outcome_and_delete(signed_in, org, member, calls):
    response = signed_in.post(reverse("calls:select"), {"action": "all", "filters": "outcome=won", "next": "/calls/"})
    assert response.status_code == 302
    assert CallSelection.objects.get(user=member.user).matching_count == 4
    csv_body = b"".join(signed_in.post(reverse("calls:export")).streaming_content).decode()
    assert csv_body.count("\n") == 5
    signed_in.post(reverse("calls:bulk_outcome"), {"outcome": "lost"})
    assert Call.objects.for_org(org).filter(outcome="won").count() == 0
    assert signed_in.get(reverse("calls:bulk_delete")).status_code == 200
    signed_in.post(reverse("calls:bulk_delete"), {"confirm": "1"})
    assert signed_in.get(reverse("calls:list"), {"outcome": "won"}).status_code == 200


def test_the_analytics_page_and_api_with_every_filter(signed_in, member, calls):
    url = reverse("analytics:dashboard")
    for query in (
        {"days": 90},
        {"from": "2026-03-01", "to": "2026-03-05", "rep": member.user.pk},
        {"outcome": "unknown"},
    ):
        assert signed_in.get(url, query).status_code == 200
    data = signed_in.get(reverse("analytics_api:comprehensive"), {"from": "2026-03-01", "to": "2026-03-05"}).json()
    assert sum(day["total"] for day in data["calls_per_day"]) == 12


def test_seed_demo_on_small_n_then_rollups_equal_the_raw_aggregation(db, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        call_command("seed_demo", calls=300, orgs=2, reps=3, days=20, seed=7, anchor="2026-03-20", verbosity=0)
    assert Call.objects.count() == 300
    org = Organization.objects.filter(slug__startswith="demo-").order_by("pk").first()
    assert DailyRollup.objects.filter(organization=org).exists()
    days = sorted({local_day(moment) for moment in Call.objects.for_org(org).values_list("started_at", flat=True)})
    params = AnalyticsParams(first=days[0], last=days[-1])
    assert comprehensive_analytics(org, params) == raw_comprehensive_analytics(org, params)
    rep = Call.objects.for_org(org).exclude(rep=None).values_list("rep_id", flat=True).first()
    by_rep = AnalyticsParams(first=days[0] + timedelta(days=2), last=days[-1], rep_id=rep, outcome="won")
    assert comprehensive_analytics(org, by_rep) == raw_comprehensive_analytics(org, by_rep)
    call_command("rebuild_rollups", verbosity=0)
    assert comprehensive_analytics(org, params) == raw_comprehensive_analytics(org, params)


def test_the_admin_site_lists_every_registered_model(client, staff_member, calls):
    client.force_login(staff_member.user)
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert inline_code(index.text) == []
    for model in admin.site._registry:
        opts = model._meta
        changelist = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"))
        assert changelist.status_code == 200, opts.label
        assert inline_code(changelist.text) == [], opts.label


def test_the_health_checks_pass_and_name_the_database_they_ran_on(client, staff_member):
    body = client.get(reverse("monitoring:health")).json()
    assert body["checks"]["database"]["ok"]
    client.force_login(staff_member.user)
    assert connection.vendor in client.get(reverse("monitoring:overview")).text
