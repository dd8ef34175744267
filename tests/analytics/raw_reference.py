"""The reference the rollups must equal: the comprehensive analytics computed
by aggregating the calls themselves, with no rollup table involved.

The tests compare analytics.report.comprehensive_analytics with
raw_comprehensive_analytics over the same data (they must be equal to the last
digit), and bench/analytics.py uses it as the baseline the rollups are timed
against. It feeds analytics.report.build_report the same row shapes the
rollups give, so both run the same arithmetic.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from django.db import connection
from django.db.models import Case, Count, DateField, F, Q, Value, When

from analytics.report import (
    REP_NAME_FIELDS,
    TOP_TOPICS,
    AnalyticsParams,
    Fetchers,
    build_report,
    filtered_rows,
)
from analytics.rollups import (
    TopicQuery,
    call_measures,
    day_bounds,
    exact_sum,
    int_sum,
    local_day_sql,
    python_topic_rows,
    topic_source_sql,
    with_local_time,
)
from calls.models import Call
from calls.tenancy.models import Organization


def raw_comprehensive_analytics(organization: Organization, params: AnalyticsParams) -> dict:
    return build_report(organization, params, RAW)


def _daily_rows(organization: Organization, params: AnalyticsParams) -> list[dict]:
    start, end = day_bounds(params.previous_first, params.last)
    calls = filtered_rows(Call.objects.for_org(organization).started_between(start, end), params)
    start_of_current = day_bounds(params.first, params.first)[0]
    period_day = Case(
        When(started_at__lt=start_of_current, then=Value(None)), default=F("local_day"), output_field=DateField()
    )
    grouped = with_local_time(calls).annotate(period_day=period_day).values("period_day", "outcome")
    return [{"day": row.pop("period_day"), **row} for row in grouped.annotate(**call_measures()).order_by()]


def _leader_rows(organization: Organization, params: AnalyticsParams) -> list[dict]:
    start, end = day_bounds(params.first, params.last)
    calls = filtered_rows(Call.objects.for_org(organization).started_between(start, end), params)
    measures = {
        "calls": Count("id"),
        "duration_sum": int_sum("duration_seconds"),
        "score_sum": int_sum("score"),
        "score_count": Count("score"),
        "talk_ratio_sum": exact_sum("talk_ratio"),
        "talk_ratio_count": Count("talk_ratio"),
        "won": Count("id", filter=Q(outcome="won")),
        "lost": Count("id", filter=Q(outcome="lost")),
    }
    return list(calls.values(*REP_NAME_FIELDS).annotate(**measures).order_by())


def _topic_day_counts(
    organization: Organization, params: AnalyticsParams, first: date, topics: list[str] | None = None
) -> list[tuple[date, str, int]]:
    start, end = day_bounds(first, params.last)
    query = TopicQuery(organization.pk, start, end, params.rep_id, params.outcome_db)
    if connection.vendor != "postgresql":
        counts: dict[tuple[date, str], int] = defaultdict(int)
        for day, _rep, _outcome, topic in python_topic_rows(query):
            if topics is None or topic in topics:
                counts[day, topic] += 1
        return [(day, topic, n) for (day, topic), n in counts.items()]
    source, source_params = topic_source_sql(query)
    day_sql, day_params = local_day_sql()
    extra = ""
    if topics is not None:
        extra = " AND t.topic = ANY(%s)"
        source_params = [*source_params, topics]
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {day_sql}, t.topic, COUNT(*) {source}{extra} GROUP BY 1, 2", [*day_params, *source_params]
        )
        return cursor.fetchall()


def _topic_totals(organization: Organization, params: AnalyticsParams) -> list[tuple]:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for day, topic, n in _topic_day_counts(organization, params, params.previous_first):
        counts[topic][0 if day >= params.first else 1] += n
    ranked = sorted(((t, c, p) for t, (c, p) in counts.items() if c), key=lambda r: (-r[1], r[0]))
    return ranked[:TOP_TOPICS]


def _topic_daily(organization: Organization, params: AnalyticsParams, topics: list[str]) -> list[tuple[date, str, int]]:
    return _topic_day_counts(organization, params, params.first, topics) if topics else []


RAW = Fetchers(daily_rows=_daily_rows, leader_rows=_leader_rows, topic_totals=_topic_totals, topic_daily=_topic_daily)
