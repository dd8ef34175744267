"""Calls API v1: list with filters, sorts and cursor pages; detail; errors in one shape."""

from __future__ import annotations

import pytest
from django.urls import reverse

from calls.tenancy.models import ApiToken
from tests import factories
from tests.calls.helpers import bulk_calls, expected_order


@pytest.fixture
def bearer(member, org):
    _, raw = ApiToken.issue(user=member.user, organization=org, name="CRM sync")
    return {"Authorization": f"Bearer {raw}"}


@pytest.fixture
def api_calls(org, member):
    rows = [
        {"title": f"API call {n:02d}", "score": None if n % 5 == 0 else n % 7, "rep": member.user} for n in range(33)
    ]
    return bulk_calls(org, rows)


def test_the_list_walks_every_call_once_by_following_next(client, bearer, api_calls):
    from calls.filters import Sort

    url = reverse("calls_api:list") + "?sort=-score&size=25"
    seen = []
    while url:
        body = client.get(url, headers=bearer).json()
        seen.extend(item["id"] for item in body["results"])
        url = body["next"]
    assert seen == expected_order(api_calls, Sort("score", descending=True))


def test_the_list_takes_the_dashboards_filters(client, bearer, api_calls):
    body = client.get(reverse("calls_api:list"), {"q": "call 0", "score_min": 3}, headers=bearer).json()
    assert {item["title"] for item in body["results"]} == {"API call 03", "API call 04", "API call 06"}
    assert body["total"] == {"value": 3, "exact": True}


def test_a_call_in_the_list_has_its_fields(client, bearer, api_calls, member):
    item = client.get(reverse("calls_api:list"), {"size": 25}, headers=bearer).json()["results"][0]
    assert item["rep"] == {"id": member.user.pk, "name": member.user.get_full_name()}
    assert set(item) >= {"id", "title", "customer", "started_at", "duration_seconds", "status", "score", "sentiment"}


def test_invalid_filters_are_a_400_naming_each_field(client, bearer, api_calls):
    response = client.get(reverse("calls_api:list"), {"score_min": "high", "status": "nope"}, headers=bearer)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_filters"
    assert set(error["fields"]) == {"score_min", "status"}


def test_a_tampered_cursor_is_a_400(client, bearer, api_calls):
    response = client.get(reverse("calls_api:list"), {"cursor": "forged:cursor"}, headers=bearer)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_cursor"
    assert "cursor" in response.json()["error"]["fields"]


def test_the_session_works_too(client, member, api_calls):
    client.force_login(member.user)
    assert len(client.get(reverse("calls_api:list")).json()["results"]) == 33


def test_no_credentials_is_a_401_in_the_one_error_shape(client, db):
    response = client.get(reverse("calls_api:list"))
    assert response.status_code == 401
    assert set(response.json()["error"]) == {"code", "message", "fields"}


def test_the_list_never_contains_another_orgs_calls(client, bearer, api_calls, other_org_call):
    for query in ({}, {"q": "globex"}, {"sort": "score"}):
        ids = [item["id"] for item in client.get(reverse("calls_api:list"), query, headers=bearer).json()["results"]]
        assert other_org_call.pk not in ids


def test_a_token_for_one_org_never_lists_another_org_of_the_same_user(client, member, org, other_org, api_calls):
    factories.make_membership(other_org, user=member.user)
    other_call = factories.make_call(other_org, title="Other org, same person")
    _, raw = ApiToken.issue(user=member.user, organization=org, name="only acme")
    body = client.get(reverse("calls_api:list"), {"size": 200}, headers={"Authorization": f"Bearer {raw}"}).json()
    assert other_call.pk not in [item["id"] for item in body["results"]]


def test_detail_returns_the_call_with_its_analysis(client, bearer, call):
    factories.make_analysis(call, summary="Agreed on a pilot.")
    body = client.get(reverse("calls_api:detail", args=[call.pk]), headers=bearer).json()
    assert body["id"] == call.pk
    assert body["analysis"]["summary"] == "Agreed on a pilot."


def test_detail_of_another_orgs_call_is_a_404(client, bearer, other_org_call):
    response = client.get(reverse("calls_api:detail", args=[other_org_call.pk]), headers=bearer)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert other_org_call.title not in response.text
