"""The rollup path returns exactly what aggregating the calls returns, after
any sequence of creates, edits (outcome, day, rep, status, scores), deletes
and bulk changes, in UTC and in a time zone with daylight saving."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from analytics.models import DailyRollup, OrgDailyRollup, TopicDayRollup, TopicRollup
from analytics.report import AnalyticsParams, comprehensive_analytics
from analytics.rollups import rebuild_rollups
from calls.events import affected_range, announce_bulk_change
from calls.models import Call, CallAnalysis
from tests import factories
from tests.analytics.raw_reference import raw_comprehensive_analytics

FIRST_DAY = date(2026, 3, 1)  # spans the US switch to daylight saving (2026-03-08)
SPAN_DAYS = 14
TOPICS = ["pricing", "Pricing ", "demo", "security", "timeline", ""]
OUTCOMES = ["", "won", "lost", "follow_up", "no_decision"]
STATUSES = ["completed", "completed", "completed", "failed", "uploaded", "analyzing"]

moments = st.builds(
    lambda day, minute: datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=day, minutes=minute),
    st.integers(0, SPAN_DAYS - 1),
    st.integers(0, 24 * 60 - 1),
)
call_fields = st.fixed_dictionaries(
    {
        "started_at": moments,
        "rep": st.integers(0, 2),  # index into the reps; 2 means no rep
        "outcome": st.sampled_from(OUTCOMES),
        "status": st.sampled_from(STATUSES),
        "duration_seconds": st.integers(0, 5400),
        "score": st.none() | st.integers(0, 100),
        "sentiment": st.none() | st.floats(-1, 1, allow_nan=False),
        "talk_ratio": st.none() | st.floats(0, 1, allow_nan=False),
        "topics": st.none() | st.lists(st.sampled_from(TOPICS), max_size=4),
    }
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("create"), call_fields),
        st.tuples(st.just("create_other_org"), call_fields),
        st.tuples(st.just("edit"), st.integers(0, 50), call_fields),
        st.tuples(st.just("delete"), st.integers(0, 50)),
        st.tuples(st.just("bulk_outcome"), st.sampled_from(OUTCOMES), st.integers(0, SPAN_DAYS - 1)),
        st.tuples(st.just("bulk_move"), st.integers(-3, 3)),
        st.tuples(st.just("bulk_delete"), st.integers(0, SPAN_DAYS - 1)),
        st.tuples(st.just("topics"), st.integers(0, 50), st.lists(st.sampled_from(TOPICS), max_size=3)),
    ),
    min_size=1,
    max_size=14,
)


def _call_values(fields: dict, reps: list) -> dict:
    values = {k: v for k, v in fields.items() if k not in {"rep", "topics"}}
    values["rep"] = reps[fields["rep"]] if fields["rep"] < len(reps) else None
    return values


def _set_topics(call: Call, topics: list[str] | None) -> None:
    CallAnalysis.objects.filter(call=call).delete()
    if topics is not None:
        factories.make_analysis(call, topics=topics)


def apply(operation: tuple, org, other_org, reps, capture) -> None:
    kind = operation[0]
    calls = list(Call.objects.filter(organization=org).order_by("id"))
    if kind in {"create", "create_other_org"}:
        target = org if kind == "create" else other_org
        call = factories.make_call(target, **_call_values(operation[1], reps if target == org else []))
        _set_topics(call, operation[1]["topics"])
    elif kind == "edit" and calls:
        call = calls[operation[1] % len(calls)]
        for name, value in _call_values(operation[2], reps).items():
            setattr(call, name, value)
        call.save()
    elif kind == "delete" and calls:
        calls[operation[1] % len(calls)].delete()
    elif kind == "topics" and calls:
        _set_topics(calls[operation[1] % len(calls)], operation[2])
    elif kind == "bulk_outcome":
        day_start = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=operation[2])
        chosen = Call.objects.filter(
            organization=org, started_at__gte=day_start, started_at__lt=day_start + timedelta(days=2)
        )
        with capture(execute=True):
            announce_bulk_change(organization_id=org.pk, started_between=affected_range(chosen))
            chosen.update(outcome=operation[1])
    elif kind == "bulk_move":
        chosen = Call.objects.filter(organization=org, rep=reps[0])
        ids = list(chosen.values_list("id", flat=True))
        with capture(execute=True):
            announce_bulk_change(organization_id=org.pk, started_between=affected_range(chosen), call_ids=ids)
            Call.objects.filter(pk__in=ids).update(started_at=models_add_days(operation[1]))
    elif kind == "bulk_delete":
        day_start = datetime(2026, 3, 1, tzinfo=UTC) + timedelta(days=operation[1])
        chosen = Call.objects.filter(
            organization=org, started_at__gte=day_start, started_at__lt=day_start + timedelta(days=1)
        )
        with capture(execute=True):
            announce_bulk_change(organization_id=org.pk, started_between=affected_range(chosen))
            CallAnalysis.objects.filter(call__in=chosen)._raw_delete(connection.alias)
            chosen._raw_delete(connection.alias)


def models_add_days(days: int):
    from django.db.models import F

    return F("started_at") + timedelta(days=days)


PARAMS = [
    AnalyticsParams(first=FIRST_DAY, last=FIRST_DAY + timedelta(days=SPAN_DAYS - 1)),
    AnalyticsParams(first=FIRST_DAY + timedelta(days=5), last=FIRST_DAY + timedelta(days=9)),
    AnalyticsParams(first=FIRST_DAY, last=FIRST_DAY + timedelta(days=SPAN_DAYS - 1), outcome="won"),
    AnalyticsParams(first=FIRST_DAY, last=FIRST_DAY + timedelta(days=SPAN_DAYS - 1), outcome="unknown"),
    AnalyticsParams(first=FIRST_DAY + timedelta(days=3), last=FIRST_DAY + timedelta(days=12), sort="score"),
]


def rollup_rows(org) -> tuple[list, list, list, list]:
    daily = sorted(
        (
            tuple(v for k, v in row.items() if k != "id")
            for row in DailyRollup.objects.filter(organization=org).values()
        ),
        key=repr,
    )
    topics = sorted(
        (
            (r["day"], r["rep_id"], r["outcome"], r["topic"], r["calls"])
            for r in TopicRollup.objects.filter(organization=org).values()
        ),
        key=repr,
    )
    topic_days = sorted(
        (r["day"], r["topic"], r["calls"]) for r in TopicDayRollup.objects.filter(organization=org).values()
    )
    org_days = sorted(
        (
            tuple(v for k, v in row.items() if k != "id")
            for row in OrgDailyRollup.objects.filter(organization=org).values()
        ),
        key=repr,
    )
    return daily, topics, topic_days, org_days


def _run(org, other_org, reps, ops, capture) -> None:
    # Each example starts from no calls: the examples share one test transaction.
    Call.objects.all().delete()
    assert not DailyRollup.objects.exists()
    whole_span = PARAMS[0]
    for operation in ops:
        apply(operation, org, other_org, reps, capture)
        # After every step, so a later bulk rebuild can't hide a stale row.
        assert comprehensive_analytics(org, whole_span) == raw_comprehensive_analytics(org, whole_span)
    for params in [*PARAMS, AnalyticsParams(first=PARAMS[0].first, last=PARAMS[0].last, rep_id=reps[0].pk)]:
        assert comprehensive_analytics(org, params) == raw_comprehensive_analytics(org, params)
    # The incrementally maintained rows are the rows a rebuild from scratch writes.
    maintained = rollup_rows(org)
    rebuild_rollups(org.pk)
    assert rollup_rows(org) == maintained


@pytest.fixture
def reps(org, member):
    return [member.user, factories.make_membership(org).user]


@pytest.mark.sqlite
@hypothesis_settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_rollups_equal_raw_aggregation_after_any_changes(org, other_org, reps, django_capture_on_commit_callbacks, ops):
    _run(org, other_org, reps, ops, django_capture_on_commit_callbacks)


@pytest.mark.sqlite
@hypothesis_settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations)
def test_rollups_equal_raw_aggregation_with_local_days_across_daylight_saving(
    settings, org, other_org, reps, django_capture_on_commit_callbacks, ops
):
    settings.TIME_ZONE = "America/New_York"
    _run(org, other_org, reps, ops, django_capture_on_commit_callbacks)


def test_a_call_moved_to_another_day_leaves_its_old_day_and_joins_the_new_one(org, member):
    call = factories.make_call(org, rep=member.user, started_at=datetime(2026, 3, 2, 10, tzinfo=UTC))
    call.started_at = datetime(2026, 3, 5, 10, tzinfo=UTC)
    call.save()
    days = dict(DailyRollup.objects.filter(organization=org).values_list("day", "calls"))
    assert days == {date(2026, 3, 5): 1}


def test_a_call_given_to_another_rep_leaves_the_first_reps_rows(org, member):
    colleague = factories.make_membership(org).user
    call = factories.make_call(org, rep=member.user, started_at=datetime(2026, 3, 2, 10, tzinfo=UTC))
    call.rep = colleague
    call.save()
    assert list(DailyRollup.objects.values_list("rep_id", "calls")) == [(colleague.pk, 1)]
    call.rep = None
    call.save()
    assert list(DailyRollup.objects.values_list("rep_id", "calls")) == [(None, 1)]


def test_a_call_whose_outcome_changes_moves_between_outcome_rows(org, member):
    call = factories.make_call(org, rep=member.user, outcome="won", started_at=datetime(2026, 3, 2, 10, tzinfo=UTC))
    call.outcome = "lost"
    call.save(update_fields=["outcome"])
    assert list(DailyRollup.objects.values_list("outcome", "calls")) == [("lost", 1)]


def test_local_days_follow_the_settings_time_zone(settings, org, member):
    settings.TIME_ZONE = "America/New_York"
    # 02:00 UTC on 3 March is 21:00 on 2 March in New York.
    factories.make_call(org, rep=member.user, started_at=datetime(2026, 3, 3, 2, tzinfo=UTC))
    row = DailyRollup.objects.get(organization=org)
    assert row.day == date(2026, 3, 2)
    assert row.h21 == 1
