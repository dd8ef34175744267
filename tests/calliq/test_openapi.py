"""The OpenAPI document of /api/v1 stays true: real responses of every
operation validate against it, and schemathesis fuzzes every operation
through the WSGI app with a token, finding no 5xx and no response that
breaks the document. Marked `sqlite`: the SQLite lane runs them too."""

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
    ("/calls/{call_id}", "GET"),
    ("/analytics/comprehensive", "GET"),
    ("/openapi.json", "GET"),
]

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
def api_data(member, in_test_transaction):
    """Calls with and without analysis, a colleague, and a token."""
    org = member.organization
    colleague = factories.make_membership(org).user
    now = timezone.now()
    calls = [
        factories.make_call(org, rep=member.user, started_at=now - timedelta(days=2)),
        factories.make_call(org, rep=colleague, started_at=now - timedelta(days=40), outcome="", score=None),
        factories.make_call(org, rep=None, status=Call.Status.FAILED, score=None, sentiment=None, talk_ratio=None),
    ]
    factories.make_analysis(calls[0])
    _, raw = ApiToken.issue(user=member.user, organization=org, name="fuzz")
    return {"calls": calls, "token": raw, "member": member}


def auth(api_data) -> dict[str, str]:
    # identity: the WSGI test transport does not undo the app's brotli/gzip compression.
    return {"Authorization": f"Bearer {api_data['token']}", "Accept-Encoding": "identity"}


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


def validate(api_data, path, method="GET", **parts):
    case = schema[path][method].Case(**parts)
    response = case.call(headers=auth(api_data))
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
    assert validate(api_data, "/openapi.json").status_code == 200


@pytest.mark.sqlite
@schema.parametrize()
@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_fuzzing_every_operation_finds_no_server_error(case, api_data):
    case.call_and_validate(headers=auth(api_data), checks=CHECKS)
