"""The analytics page and GET /api/v1/analytics/comprehensive: freshness,
tenancy, bad parameters, the response shapes and the staff business page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from analytics.forms import local_today
from analytics.models import DailyRollup
from analytics.tasks import rebuild_all_rollups, repair_recent_rollups
from calls.models import Call
from calls.tenancy.models import ApiToken
from tests import factories

API = "/api/v1/analytics/comprehensive"


def kpi(data: dict, key: str):
    return next(k for k in data["kpis"] if k["key"] == key)["value"]


def recently(**delta: int):
    """Calls a few minutes or days old: inside the default ranges whatever the factories' clock."""
    return timezone.now() - timedelta(**(delta or {"minutes": 30}))


@pytest.fixture
def recent_call(org, member):
    return factories.make_call(org, rep=member.user, started_at=recently(), title="Acme renewal with Initech")


@pytest.fixture
def recent_other_org_call(other_org, other_member):
    return factories.make_call(
        other_org, rep=other_member.user, started_at=recently(), title="Globex secret expansion deal"
    )


@pytest.fixture
def manager_client(client, member):
    client.force_login(member.user)
    return client


def test_a_new_call_shows_on_the_next_request(
    manager_client, org, member, recent_call, django_capture_on_commit_callbacks
):
    before = manager_client.get(API, {"days": 7}).json()
    assert manager_client.get(API, {"days": 7}).headers["X-Cache"] == "HIT"
    with django_capture_on_commit_callbacks(execute=True):  # the cache is invalidated on commit
        factories.make_call(org, rep=member.user, started_at=recently(minutes=5), outcome="lost")
    response = manager_client.get(API, {"days": 7})
    assert response.headers["X-Cache"] == "MISS"
    after = response.json()
    assert kpi(after, "calls") == kpi(before, "calls") + 1
    page = manager_client.get(reverse("analytics:dashboard"), {"days": 7})
    assert '<span class="kpi-value">2</span>' in page.text


def test_an_edited_and_then_deleted_call_changes_the_next_answer(
    manager_client, org, member, recent_call, django_capture_on_commit_callbacks
):
    manager_client.get(API, {"days": 30})
    with django_capture_on_commit_callbacks(execute=True):
        recent_call.outcome = Call.Outcome.LOST
        recent_call.save()
    data = manager_client.get(API, {"days": 30}).json()
    assert kpi(data, "win_rate") == 0.0
    with django_capture_on_commit_callbacks(execute=True):
        recent_call.delete()
    data = manager_client.get(API, {"days": 30}).json()
    assert kpi(data, "calls") == 0
    assert data["leaderboard"] == []


def test_another_orgs_calls_are_never_counted(manager_client, recent_call, recent_other_org_call, other_member):
    data = manager_client.get(API, {"days": 30}).json()
    assert kpi(data, "calls") == 1
    assert [row["rep_id"] for row in data["leaderboard"]] == [recent_call.rep_id]
    page = manager_client.get(reverse("analytics:dashboard"))
    assert other_member.user.get_full_name() not in page.text
    assert recent_other_org_call.title not in page.text


def test_a_rep_of_another_org_is_a_400_on_the_api(manager_client, recent_call, other_member):
    response = manager_client.get(API, {"days": 30, "rep": other_member.user.pk})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_parameters"
    assert "rep" in response.json()["error"]["fields"]


def test_a_rep_of_another_org_is_a_400_with_a_message_on_the_page(manager_client, other_member):
    response = manager_client.get(reverse("analytics:dashboard"), {"rep": other_member.user.pk})
    assert response.status_code == 400
    assert "That rep is not a member of this organization." in response.text


def test_filtering_by_a_rep_counts_only_their_calls(manager_client, org, member, recent_call):
    colleague = factories.make_membership(org).user
    factories.make_call(org, rep=colleague, started_at=recently())
    data = manager_client.get(API, {"days": 30, "rep": colleague.pk}).json()
    assert kpi(data, "calls") == 1
    assert data["leaderboard"][0]["rep_id"] == colleague.pk


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-03-10", "to": "2026-03-01"}, "to"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "to"),
        ({"from": "2026-02-30", "to": "2026-03-01"}, "from"),
        ({"from": "yesterday", "to": "2026-03-01"}, "from"),
        ({"from": "2026-03-01"}, "to"),
        ({"days": "1000"}, "days"),
        ({"rep": "not-a-number"}, "rep"),
        ({"rep": "999999"}, "rep"),
        ({"outcome": "maybe"}, "outcome"),
        ({"sort": "salary"}, "sort"),
    ],
)
def test_bad_parameters_get_a_400_in_the_api_error_shape(manager_client, query, field):
    response = manager_client.get(API, query)
    assert response.status_code == 400
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert field in body["error"]["fields"]


def test_a_reversed_range_shows_the_form_error_on_the_page_with_a_400(manager_client):
    response = manager_client.get(reverse("analytics:dashboard"), {"from": "2026-03-10", "to": "2026-03-01"})
    assert response.status_code == 400
    assert "must be on or after" in response.text
    assert 'aria-invalid="true"' in response.text


def test_a_range_of_366_days_is_allowed_and_367_is_not(manager_client):
    assert manager_client.get(API, {"from": "2025-01-01", "to": "2026-01-01"}).status_code == 200
    assert manager_client.get(API, {"from": "2025-01-01", "to": "2026-01-02"}).status_code == 400


def test_the_api_answers_with_every_section_and_an_x_cache_header(manager_client, recent_call):
    factories.make_analysis(recent_call, topics=["Pricing", "demo"])
    response = manager_client.get(API, {"days": 7})
    assert response.status_code == 200
    assert response["X-Cache"] in {"HIT", "MISS", "BYPASS"}
    data = response.json()
    assert set(data) >= {
        "range", "filters", "kpis", "calls_per_day", "score_trend", "sentiment_trend",
        "sentiment_distribution", "leaderboard", "topics", "heatmap",
    }  # fmt: skip
    assert [k["key"] for k in data["kpis"]] == [
        "calls", "talk_time_seconds", "average_duration_seconds", "average_score", "average_sentiment",
        "win_rate", "failure_rate",
    ]  # fmt: skip
    assert len(data["calls_per_day"]) == 7
    assert data["range"]["to"] == local_today().isoformat()
    assert {t["topic"] for t in data["topics"]} == {"pricing", "demo"}
    assert len(data["heatmap"]["calls"]) == 7
    assert all(len(row) == 24 for row in data["heatmap"]["calls"])


def test_the_api_wants_a_sign_in(client):
    response = client.get(API)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_bearer_token_reads_its_own_orgs_analytics(client, member, recent_call, recent_other_org_call):
    _, raw = ApiToken.issue(user=member.user, organization=member.organization, name="CRM")
    data = client.get(API, {"days": 30}, headers={"Authorization": f"Bearer {raw}"}).json()
    assert kpi(data, "calls") == 1


def test_the_page_answers_htmx_with_the_body_only_and_varies_on_hx_request(manager_client, recent_call):
    full = manager_client.get(reverse("analytics:dashboard"))
    fragment = manager_client.get(reverse("analytics:dashboard"), {"days": 7}, headers={"HX-Request": "true"})
    restore = manager_client.get(
        reverse("analytics:dashboard"), headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in full.text
    assert "<html" not in fragment.text
    assert 'id="calls-per-day-title"' in fragment.text
    assert "<html" in restore.text
    assert "HX-Request" in full["Vary"]
    assert "HX-Request" in fragment["Vary"]


def test_the_page_has_a_titled_chart_and_a_table_view_for_each_chart(manager_client, recent_call):
    page = manager_client.get(reverse("analytics:dashboard")).text
    for title in [
        "Calls per day by outcome", "Average score per day", "Average sentiment per day",
        "Sentiment distribution", "Call volume by weekday and hour",
    ]:  # fmt: skip
        assert f">{title}</h2>" in page
    assert page.count("<summary>Show as table</summary>") == 5
    assert "style=" not in page
    assert "<script>" not in page


def test_the_leaderboard_sorts_by_the_chosen_column(manager_client, org, member):
    strong = factories.make_membership(org).user
    weak = factories.make_membership(org).user
    factories.make_call(org, rep=strong, score=90, started_at=recently())
    factories.make_call(org, rep=weak, score=40, started_at=recently())
    factories.make_call(org, rep=weak, score=40, started_at=recently())
    by_score = manager_client.get(API, {"days": 7, "sort": "-score"}).json()["leaderboard"]
    by_calls = manager_client.get(API, {"days": 7, "sort": "-calls"}).json()["leaderboard"]
    assert [r["rep_id"] for r in by_score] == [strong.pk, weak.pk]
    assert [r["rep_id"] for r in by_calls] == [weak.pk, strong.pk]


def test_signed_out_people_go_to_sign_in(client):
    response = client.get(reverse("analytics:dashboard"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


def test_the_business_page_is_denied_to_non_staff(manager_client):
    assert manager_client.get(reverse("analytics:business")).status_code == 403


def test_the_business_page_shows_staff_the_pipeline_figures(client, staff_user, org, member):
    factories.make_call(org, rep=member.user, status="completed", started_at=recently())
    factories.make_call(org, rep=member.user, status="failed", outcome="", score=None, started_at=recently())
    client.force_login(staff_user)
    response = client.get(reverse("analytics:business"))
    assert response.status_code == 200
    metrics = response.context["metrics"]
    assert metrics["processed"] == 2
    assert metrics["success_rate"] == 0.5
    assert metrics["active_organizations"] == 1


def test_rebuild_command_and_repair_task_restore_rollups_broken_behind_their_back(org, member, recent_call):
    expected = list(DailyRollup.objects.values_list("day", "calls"))
    with connection.cursor() as cursor:
        cursor.execute("UPDATE analytics_dailyrollup SET calls = calls + 41")
    repair_recent_rollups(days=3)
    assert list(DailyRollup.objects.values_list("day", "calls")) == expected
    DailyRollup.objects.all().delete()
    call_command("rebuild_rollups", "--org", org.slug, stdout=open("/dev/null", "w"))  # noqa: SIM115
    assert list(DailyRollup.objects.values_list("day", "calls")) == expected
    DailyRollup.objects.all().delete()
    assert rebuild_all_rollups() == len(expected)


def test_deleting_an_organization_with_calls_leaves_no_rollups(org, member, recent_call):
    org.delete()
    assert not DailyRollup.objects.exists()


def test_calls_of_a_deleted_rep_stay_counted_as_unassigned(manager_client, org, member):
    leaver = factories.make_membership(org).user
    factories.make_call(org, rep=leaver, started_at=recently())
    leaver.delete()
    board = manager_client.get(API, {"days": 7}).json()["leaderboard"]
    assert [(r["rep_id"], r["name"], r["calls"]) for r in board] == [(None, "Unassigned", 1)]


def test_a_call_outside_the_range_is_not_counted(manager_client, org, member):
    factories.make_call(org, rep=member.user, started_at=recently(days=40))
    data = manager_client.get(API, {"days": 30}).json()
    assert kpi(data, "calls") == 0
    assert next(k for k in data["kpis"] if k["key"] == "calls")["previous"] == 1


def test_a_bulk_change_shows_in_cached_analytics_on_the_next_request(
    manager_client, org, recent_call, django_capture_on_commit_callbacks
):
    from calls.events import affected_range, announce_bulk_change

    assert kpi(manager_client.get(API, {"days": 30}).json(), "win_rate") == 1.0
    assert manager_client.get(API, {"days": 30}).headers["X-Cache"] == "HIT"
    with django_capture_on_commit_callbacks(execute=True):
        calls = Call.objects.for_org(org)
        started_between = affected_range(calls)
        calls.update(outcome=Call.Outcome.LOST)  # fires no signals: the announcement does the work
        announce_bulk_change(organization_id=org.pk, started_between=started_between)
    assert kpi(manager_client.get(API, {"days": 30}).json(), "win_rate") == 0.0
