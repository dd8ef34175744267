"""A bulk change and the cached analytics: no reader caches a stale report
for good between the cache's tag bump and the rollup rebuild."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from analytics import receivers
from calls.bulk import set_selection_outcome
from calls.models import Call
from calls.selection import set_calls_selected
from tests import factories

API = "/api/v1/analytics/comprehensive"


def win_rate(client) -> float:
    data = client.get(API, {"days": 30}).json()
    return next(k for k in data["kpis"] if k["key"] == "win_rate")["value"]


# A real commit: inside a test transaction the cache's on-commit bump would be
# deferred past the rollup rebuild and hide the race.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def manager_client(client, member):
    client.force_login(member.user)
    return client


def test_a_report_cached_between_the_tag_bump_and_the_rebuild_is_not_served_afterwards(
    manager_client, org, member, monkeypatch
):
    call = factories.make_call(
        org, rep=member.user, started_at=timezone.now() - timedelta(minutes=30), outcome=Call.Outcome.WON
    )
    assert win_rate(manager_client) == 1.0
    real_rebuild = receivers.rebuild_rollups
    served_in_between: list[float] = []

    def reader_in_between(*args, **kwargs):
        # The cache's receiver has bumped the tag; the rollups are still old.
        served_in_between.append(win_rate(manager_client))
        return real_rebuild(*args, **kwargs)

    monkeypatch.setattr(receivers, "rebuild_rollups", reader_in_between)
    set_calls_selected(org, member.user, [call.pk], selected=True)
    set_selection_outcome(member, Call.Outcome.LOST)
    assert served_in_between == [1.0]  # the race happened: the old report was cached
    assert win_rate(manager_client) == 0.0
