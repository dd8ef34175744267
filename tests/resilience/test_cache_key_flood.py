"""A signed-in client cannot fill the cache's Redis with entries of its own
making: parameters a view ignores and HX-Target values it does not render
differently for never make a new entry."""

from __future__ import annotations

import pytest
from django.urls import reverse

from resilience.cache import cache_service
from resilience.cache.decorators import NAMESPACE
from tests.resilience import cache_fixtures

fresh_cache_state = cache_fixtures.fresh_cache_state


def view_entries() -> int:
    service = cache_service()
    return sum(1 for _ in service.client.scan_iter(match=f"{service.prefix}e:*:{NAMESPACE}:*", count=1000))


@pytest.mark.parametrize(
    "url_name",
    ["calls:list", "analytics:dashboard"],
)
def test_twenty_junk_parameters_make_at_most_one_entry(signed_in, call, url_name):
    url = reverse(url_name)
    answers = [signed_in.get(url, {"junk": f"value-{i}"}) for i in range(20)]
    assert {a.status_code for a in answers} == {200}
    assert view_entries() == 1
    assert [a["X-Cache"] for a in answers][-1] == "HIT"
    # The page is the same as without the junk (the view never saw it), the echoed path included.
    assert "junk" not in answers[-1].text


def test_junk_beside_a_real_filter_shares_the_filters_entry(signed_in, call):
    url = reverse("calls:list")
    signed_in.get(url, {"status": "completed", "junk": "1"})
    assert signed_in.get(url, {"junk": "2", "status": "completed"})["X-Cache"] == "HIT"
    assert signed_in.get(url, {"status": "failed"})["X-Cache"] == "MISS"
    assert view_entries() == 2


def test_the_api_ignores_junk_parameters_in_the_key(member, call, client):
    from calls.tenancy.models import ApiToken

    _token, raw = ApiToken.issue(user=member.user, organization=member.organization, name="flood")
    headers = {"Authorization": f"Bearer {raw}"}
    for i in range(20):
        assert client.get("/api/v1/calls", {"junk": str(i)}, headers=headers).status_code == 200
    assert view_entries() == 1


def test_hx_target_values_make_no_entries_of_their_own(signed_in, call):
    url = reverse("calls:list")
    for i in range(20):
        answer = signed_in.get(url, headers={"HX-Request": "true", "HX-Target": f"target-{i}"})
        assert answer.status_code == 200
    # One partial entry: the table renders the same whatever the target's id.
    assert view_entries() == 1
