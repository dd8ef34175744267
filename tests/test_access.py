"""The access table: every route of the URLconf (admin included) × every kind
of caller × every method it accepts, with the status each must get. A route
missing from the table fails the suite, so no route ships unclassified.

Statuses: 200 page, 302 redirect (to sign-in for nobody; after a POST that
worked), 401/403 JSON on the API, 403 page, 404 (not yours or not there), 405.
Set CALLIQ_ACCESS_PRINT=1 to print the statuses observed, to review a change.
"""

from __future__ import annotations

import os

import pytest
from django.db import transaction

from tests.access_table import ACCESS
from tests.access_world import ROLES, build_world, fill, walk_routes


def observe(world, route: str, method: str) -> dict[str, int]:
    """Each role's status for one request; state changes are rolled back so
    every role meets the same world."""
    url = fill(route, world)
    seen = {}
    for role in ROLES:
        with transaction.atomic():
            response = getattr(world.clients[role], method.lower())(url)
            seen[role] = response.status_code
            transaction.set_rollback(True)
    return seen


def all_routes() -> list[str]:
    return sorted({route for route, _ in walk_routes()})


def test_every_route_is_in_the_access_table(db):
    classified = {route for route, _ in ACCESS}
    assert [r for r in all_routes() if r not in classified] == []
    assert sorted(classified - set(all_routes())) == []


@pytest.mark.parametrize(("route", "method"), sorted(ACCESS))
def test_each_caller_gets_the_status_of_the_table(db, route, method):
    world = build_world()
    seen = observe(world, route, method)
    if os.environ.get("CALLIQ_ACCESS_PRINT"):
        print(f"\n    ({route!r}, {method!r}): row({', '.join(str(seen[r]) for r in ROLES)}),")
    assert seen == ACCESS[(route, method)]


# --- the cache path ---------------------------------------------------------------
# Cached pages are per person (organization and user in the key); cached API
# answers are per organization (the same for every member: no personal data).
# Each is warmed by the manager and then read by everyone else: nobody outside
# the entry's audience may be handed the manager's bytes.
PER_PERSON = ("/calls/", "/calls/{call}/", "/analytics/")
PER_ORGANIZATION = ("/api/v1/calls", "/api/v1/calls/{call}", "/api/v1/analytics/comprehensive")
SAME_ORGANIZATION = {"rep", "org_admin", "staff_no_perm", "token"}


@pytest.mark.parametrize("template", PER_PERSON + PER_ORGANIZATION)
def test_an_entry_warmed_by_one_caller_is_never_served_outside_its_audience(db, template):
    world = build_world()
    url = template.format(call=world.call.pk)
    manager = world.clients["manager"]
    manager.get(url)
    warmed = manager.get(url)  # the cached bytes (the first answer also carried the live CSRF token)
    assert warmed["X-Cache"] == "HIT", "the entry was not cached, so this test would prove nothing"
    manager_name = world.manager_token.user.get_username()
    shared_with = SAME_ORGANIZATION if template in PER_ORGANIZATION else set()
    for role in ROLES:
        if role == "manager" or role in shared_with:
            continue
        response = world.clients[role].get(url)
        assert response.content != warmed.content, f"{role} got the manager's cached bytes for {url}"
        assert manager_name not in response.text, f"{role} saw the manager's name on {url}"
