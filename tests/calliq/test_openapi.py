"""The OpenAPI document of /api/v1 stays true: real responses of every
operation validate against it, and schemathesis fuzzes every operation
through the WSGI app with a token, finding no 5xx and no response that
breaks the document. The fixtures make every operation answer with real data:
calls with and without analysis, a transcript the search finds, and the
monitoring token, sent to the one operation that takes it. Marked `sqlite`:
the SQLite lane runs them too."""

from __future__ import annotations

from datetime import timedelta

import pytest
import schemathesis
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from calliq.openapi import openapi_document
from calls.models import Call
from calls.tenancy.models import ApiToken
from tests import factories

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
OPERATIONS = [
    ("/calls", "GET"),
    ("/calls/search", "GET"),
    ("/calls/{call_id}", "GET"),
    ("/analytics/comprehensive", "GET"),
    ("/monitoring/metrics", "GET"),
    ("/openapi.json", "GET"),
]
MONITORING = "/monitoring/metrics"
MONITORING_TOKEN = "monitoring-token-for-the-openapi-tests"

schema = schemathesis.openapi.from_dict(openapi_document())
schema.app = WSGIHandler()


@pytest.fixture
def in_test_transaction():
    """Requests through the WSGI app share the test's transaction: Django's
    test client does the same (a request must not close the connection)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def api_data(member, in_test_transaction, settings):
    """Calls with and without analysis, a transcript that says "pricing", a
    colleague, a token, and the monitoring token set."""
    settings.CALLIQ_MONITORING_TOKEN = MONITORING_TOKEN
    org = member.organization
    colleague = factories.make_membership(org).user
    now = timezone.now()
    calls = [
        factories.make_call(org, rep=member.user, started_at=now - timedelta(days=2)),
        factories.make_call(org, rep=colleague, started_at=now - timedelta(days=40), outcome="", score=None),
        factories.make_call(org, rep=None, status=Call.Status.FAILED, score=None, sentiment=None, talk_ratio=None),
    ]
    factories.make_analysis(calls[0])
    factories.make_transcript(calls[0])  # "What does pricing look like?"
    _, raw = ApiToken.issue(user=member.user, organization=org, name="fuzz")
    return {"calls": calls, "token": raw, "member": member}


def auth(api_data, path: str = "") -> dict[str, str]:
    """The credential the operation takes: the monitoring token for the metrics, else the user's token."""
    token = MONITORING_TOKEN if path == MONITORING else api_data["token"]
    # identity: the WSGI test transport does not undo the app's brotli/gzip compression.
    return {"Authorization": f"Bearer {token}", "Accept-Encoding": "identity"}


def test_the_document_is_served_to_api_users_only(client, api_data):
    anonymous = client.get(reverse("openapi"))
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"
    document = client.get(reverse("openapi"), headers=auth(api_data)).json()
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]) == {path for path, _ in OPERATIONS}


def test_every_route_under_api_v1_is_in_the_document():
    from django.urls import get_resolver

    routes = set()
    for pattern in get_resolver().url_patterns:
        prefix = str(pattern.pattern)
        if not prefix.startswith("api/v1/"):
            continue
        for sub in getattr(pattern, "url_patterns", [pattern]):
            route = (prefix + str(sub.pattern) if sub is not pattern else prefix).removeprefix("api/v1")
            routes.add(route.replace("<int:call_id>", "{call_id}"))
    assert routes == {path for path, _ in OPERATIONS}


def validate(api_data, path, method="GET", headers=None, **parts):
    case = schema[path][method].Case(**parts)
    response = case.call(headers=auth(api_data, path) if headers is None else headers)
    case.validate_response(response, checks=CHECKS)
    return response


@pytest.mark.sqlite
def test_real_responses_of_every_operation_match_the_document(api_data):
    first = api_data["calls"][0]
    listed = validate(api_data, "/calls", query={"size": 25, "sort": "score"})
    assert listed.status_code == 200
    assert len(listed.json()["results"]) == 3
    assert validate(api_data, "/calls", query={"rep": 999999999999999999999}).status_code == 400
    assert validate(api_data, "/calls", query={"started_from": "0001-01-01"}).status_code == 400
    assert validate(api_data, "/calls", query={"cursor": "forged"}).status_code == 400
    detail = validate(api_data, "/calls/{call_id}", path_parameters={"call_id": first.pk})
    assert detail.json()["analysis"]["summary"]
    without_analysis = validate(api_data, "/calls/{call_id}", path_parameters={"call_id": api_data["calls"][2].pk})
    assert without_analysis.json()["analysis"] is None
    assert validate(api_data, "/calls/{call_id}", path_parameters={"call_id": 2**63 - 1}).status_code == 404
    analytics = validate(api_data, "/analytics/comprehensive", query={"days": "90"})
    assert analytics.json()["kpis"]
    custom = {"from": "2026-01-01", "to": "2026-03-31", "rep": api_data["member"].user.pk}
    assert validate(api_data, "/analytics/comprehensive", query=custom).status_code == 200
    assert validate(api_data, "/analytics/comprehensive", query={"from": "9999-12-31"}).status_code == 400
    found = validate(api_data, "/calls/search", query={"q": "pricing", "outcome": "won"}).json()
    assert [result["id"] for result in found["results"]] == [first.pk]
    turn = found["results"][0]["turns"][0]
    assert "<mark>" in turn["html"].lower()
    assert turn["url"].startswith(f"/calls/{first.pk}/?t=")
    assert found["next"] is None
    assert validate(api_data, "/calls/search", query={"q": "pricing", "score_min": 101}).status_code == 400
    assert validate(api_data, "/calls/search", query={"q": "pricing", "cursor": "forged"}).status_code == 400
    assert validate(api_data, "/calls/search", query={"q": "x" * 201}).status_code == 400
    assert validate(api_data, "/calls/search", query={}).status_code == 400
    metrics = validate(api_data, MONITORING).json()
    assert set(metrics) == {"generated_at", "routes", "slow", "alerts", "business"}
    assert validate(api_data, "/openapi.json").status_code == 200


@pytest.mark.sqlite
def test_the_metrics_take_the_monitoring_token_or_a_staff_session_never_a_user_token(client, api_data):
    identity = {"Accept-Encoding": "identity"}
    user_token = {"Authorization": f"Bearer {api_data['token']}"} | identity
    assert validate(api_data, MONITORING, headers=user_token).status_code == 403
    assert validate(api_data, MONITORING, headers=identity).status_code == 403
    wrong = {"Authorization": "Bearer ciq_not-a-token"} | identity
    assert validate(api_data, MONITORING, headers=wrong).json()["error"]["code"] == "invalid_token"
    user = api_data["member"].user
    user.is_staff = True
    user.save()
    # Even a staff user's API token is not a staff session.
    assert validate(api_data, MONITORING, headers=user_token).status_code == 403
    client.force_login(user)
    assert client.get(reverse("monitoring_api:metrics")).status_code == 200


@pytest.mark.sqlite
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_fuzzing_every_operation_finds_no_server_error(case, api_data):
    case.call_and_validate(headers=auth(api_data, case.operation.path), checks=CHECKS)
