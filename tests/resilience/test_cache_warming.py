"""The warm_cache command and the warming registry."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from calls.tenancy.models import Membership
from resilience.cache import warming
from tests import factories
from tests.resilience import cache_fixtures, cache_urls

fresh_cache_state = cache_fixtures.fresh_cache_state

pytestmark = pytest.mark.urls("tests.resilience.cache_urls")


@pytest.fixture(autouse=True)
def registered_warmables():
    saved = dict(warming._registry)
    cache_urls.computations.clear()
    warming.register_warmable("test", "cache_test_calls", htmx=True)
    warming.register_warmable("short", "cache_test_short", queries=({}, {"days": "7"}))
    yield
    warming._registry.clear()
    warming._registry.update(saved)


@pytest.fixture
def second_member(org):
    return factories.make_membership(org, role=Membership.Role.REP)


def warm(*args: str) -> str:
    out = StringIO()
    call_command("warm_cache", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def test_warming_stores_each_members_pages_and_a_second_run_finds_them_warm(member, second_member, call):
    first = warm("--only", "test")
    second = warm("--only", "test")
    # Two members, each: the full page and the htmx partial.
    assert "Warmed 4, already warm 0, not cached 0, failed 0 of 4 request(s)" in first
    assert "Warmed 0, already warm 4, not cached 0, failed 0 of 4 request(s)" in second
    assert cache_urls.computations["table"] == 4


def test_a_signed_in_member_is_served_the_warmed_page(client, member, call):
    client.force_login(member.user)  # signed in before the warm-up, as a live user is
    warm("--only", "test,short")
    computed = cache_urls.computations["table"]
    assert client.get("/cache-test/calls/")["X-Cache"] == "HIT"
    assert client.get("/cache-test/short/?days=7")["X-Cache"] == "HIT"
    assert cache_urls.computations["table"] == computed


def test_warming_does_not_sign_members_out_of_their_warm_entries(client, member, call):
    client.force_login(member.user)
    client.get("/cache-test/calls/")
    warm("--only", "test")
    assert client.get("/cache-test/calls/")["X-Cache"] == "HIT"


def test_dry_run_lists_the_requests_and_makes_none(member, call):
    out = warm("--only", "test", "--dry-run")
    assert f"acme\t{member.user.username}\t/cache-test/calls/" in out
    assert "(htmx partial)" in out
    assert "Dry run: 2 request(s) planned" in out
    assert cache_urls.computations["table"] == 0


def test_org_selects_one_organization(member, other_member, call):
    out = warm("--only", "test", "--org", "globex")
    assert "of 2 request(s)" in out
    assert other_member.user.username not in warm("--only", "test", "--org", "acme", "--dry-run")


def test_max_users_bounds_the_members_warmed_most_senior_first(org, member, second_member, call):
    out = warm("--only", "test", "--max-users", "1", "--dry-run")
    assert member.user.username in out  # the manager
    assert second_member.user.username not in out  # the rep


def test_unknown_areas_and_organizations_are_refused_with_a_message(org):
    with pytest.raises(CommandError, match="Unknown area"):
        warm("--only", "nonsense")
    with pytest.raises(CommandError, match="No organization with slug 'nope'"):
        warm("--org", "nope")
    with pytest.raises(CommandError, match="at least 1"):
        warm("--max-users", "0")


def test_the_apps_registrations_warm_the_real_calls_and_analytics_pages(member, call):
    from analytics import cache_wiring as analytics_wiring
    from calls import cache_wiring as calls_wiring

    warming._registry.clear()
    calls_wiring.register_warming()
    analytics_wiring.register_warming()
    out = warm("--only", "calls,analytics")
    # calls:list (page + partial) and analytics:dashboard for 7, 30 and 90 days, all answering 200.
    assert "failed 0 of 5 request(s)" in out
    plan = warm("--dry-run")
    assert "/analytics/?days=30" in plan
    assert "/calls/" in plan
