"""Deleting a selection costs a fixed number of queries, whatever its size:
the per-row post_delete receivers skip inside calls.events.bulk_operation()
and the one announcement does the cache and analytics work."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

from analytics.models import DailyRollup
from calls.bulk import delete_selection
from calls.models import Call, CallAnalysis, Transcript
from calls.selection import set_calls_selected
from tests import factories

# Selection, range, chunk reads, the explicit deletes, the (empty) cascade
# look-ups and the selection clear; none of it per row.
MAX_QUERIES = 25


def delete_calls(org, member, n: int) -> int:
    calls = [factories.make_call(org, rep=member.user) for _ in range(n)]
    for call in calls:
        factories.make_transcript(call)
        factories.make_analysis(call)
    set_calls_selected(org, member.user, [c.pk for c in calls], selected=True)
    with CaptureQueriesContext(connection) as queries:
        result = delete_selection(member)
    assert result.changed == n
    return len(queries)


def test_deleting_40_calls_costs_no_more_queries_than_deleting_20(org, member, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        twenty = delete_calls(org, member, 20)
        forty = delete_calls(org, member, 40)
    assert forty == twenty
    assert twenty <= MAX_QUERIES
    assert not Call.objects.for_org(org).exists()
    assert not Transcript.objects.filter(call__organization=org).exists()
    assert not CallAnalysis.objects.filter(call__organization=org).exists()
    # The announcement rebuilt the rollups: no day still counts the deleted calls.
    assert not DailyRollup.objects.filter(organization=org, calls__gt=0).exists()
