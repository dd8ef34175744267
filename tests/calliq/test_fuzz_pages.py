"""Hypothesis fuzzes the query strings of every page a person GETs: the calls
list (full page, htmx fragment, infinite-scroll chunk), call detail (and its
id in the path), transcript search (with a query that finds a call),
analytics, business, tokens, webhook settings, monitoring. Whatever arrives,
the answer is never a 5xx. Marked `sqlite`: the SQLite lane runs it too
(integer overflows show up there first)."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.urls import reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calls.tenancy.models import Membership
from calls.webhooks.models import WebhookEndpoint
from tests import factories

# The parameters the pages read, so most examples hit a real code path.
KNOWN = [
    "q", "status", "outcome", "rep", "started_from", "started_to", "score_min", "score_max", "sentiment",
    "sort", "size", "mode", "cursor", "fragment", "days", "from", "to", "page", "next",
]  # fmt: skip
BIG = 2**64

values = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-BIG * BIG, max_value=BIG * BIG).map(str),
    st.sampled_from(["", "0", "-1", "999999999999999999999", "1e309", "NaN", "\x00", "custom", "-score", "chunk"]),
    st.dates().map(lambda d: d.isoformat()),
    st.from_regex(r"\A-?[0-9]{1,6}-[0-9]{1,3}-[0-9]{1,3}\Z"),
)
queries = st.lists(st.tuples(st.one_of(st.sampled_from(KNOWN), st.text(max_size=8)), values), max_size=6)
FUZZ = settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))


@pytest.fixture
def staff_member(member):
    """Staff, and an admin of its organization (the webhook pages are for admins)."""
    org = member.organization
    member.user.is_staff = member.user.is_superuser = True
    member.user.save()
    member.role = Membership.Role.ADMIN
    member.save()
    colleague = factories.make_membership(org).user
    now = timezone.now()
    call = factories.make_call(org, rep=member.user, started_at=now - timedelta(days=1))
    factories.make_analysis(call)
    factories.make_transcript(call)  # "pricing": a search that finds it
    WebhookEndpoint.create_with_secret(
        organization=org, url="https://hooks.example.com/calliq", description="CRM", events=["call.completed"]
    )
    factories.make_call(org, rep=colleague, started_at=now - timedelta(days=3), outcome="", score=None)
    return member


def fetch(client, url: str, query: list[tuple[str, str]], **headers: str):
    response = client.get(f"{url}?{urlencode(query)}", headers=headers)
    assert response.status_code < 500, (url, query, response.status_code)
    return response


# (route, the query every example starts with, headers). The search page's
# fixed query finds the fixture's call, so the fuzzed filters and cursors reach
# the results; the fuzz may still add its own `q`.
PAGES = [
    ("calls:list", [], {}),
    ("calls:list", [], {"HX-Request": "true"}),
    ("calls:list", [], {"HX-Request": "true", "HX-History-Restore-Request": "true"}),
    ("calls:search", [], {}),
    ("calls:search", [("q", "pricing")], {}),
    ("analytics:dashboard", [], {}),
    ("analytics:dashboard", [], {"HX-Request": "true"}),
    ("analytics:business", [], {}),
    ("tokens", [], {}),
    ("webhooks:list", [], {}),
    ("webhooks:detail", [], {}),
    ("monitoring:overview", [], {}),
    ("monitoring:routes", [], {}),
    ("monitoring:routes", [], {"HX-Request": "true"}),
    ("monitoring:slow", [], {}),
    ("monitoring:alerts", [], {}),
    ("monitoring:business", [], {}),
    ("calls:upload", [], {}),
]


def page_url(url_name: str) -> str:
    if url_name == "webhooks:detail":
        return reverse(url_name, args=[WebhookEndpoint.objects.get().pk])
    return reverse(url_name)


@pytest.mark.sqlite
@pytest.mark.parametrize(("url_name", "fixed", "headers"), PAGES)
def test_no_query_string_makes_a_page_fail(client, staff_member, url_name, fixed, headers):
    client.force_login(staff_member.user)
    url = page_url(url_name)
    first = client.get(f"{url}?{urlencode(fixed)}", headers=headers)
    assert first.status_code == 200, (url, fixed, first.status_code)  # the page works before the fuzz
    if fixed:
        assert staff_member.organization.calls.get(transcript__isnull=False).title in first.text

    @FUZZ
    @given(query=queries)
    def check(query):
        fetch(client, url, [*fixed, *query], **headers)

    check()


@pytest.mark.sqlite
def test_no_chunk_request_makes_the_list_fail(client, staff_member):
    client.force_login(staff_member.user)

    @FUZZ
    @given(query=queries)
    def check(query):
        fetch(client, reverse("calls:list"), [("fragment", "chunk"), *query], **{"HX-Request": "true"})

    check()


@pytest.mark.sqlite
def test_no_call_id_or_query_string_makes_call_detail_fail(client, staff_member):
    client.force_login(staff_member.user)

    @FUZZ
    @given(call_id=st.one_of(st.integers(min_value=0, max_value=BIG * BIG), st.just(2**63)), query=queries)
    def check(call_id, query):
        response = fetch(client, f"/calls/{call_id}/", query)
        assert response.status_code in {200, 404}

    check()


@pytest.mark.sqlite
@pytest.mark.parametrize("url", ["/calls/", "/analytics/"])
def test_the_reported_overflows_are_a_400_with_a_message(client, staff_member, url):
    client.force_login(staff_member.user)
    response = client.get(url, {"rep": "999999999999999999999"})
    assert response.status_code == 400
    assert "rep" in response.text.lower()
