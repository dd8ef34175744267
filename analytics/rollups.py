"""Building and repairing the daily rollups from the calls.

One set of aggregate expressions (`call_measures`) describes every measure;
the raw path of the dashboard aggregates calls with it and the rollup builder
stores its per-(day, rep, outcome) result, so both paths are the same
arithmetic by construction. A rebuild is idempotent: it deletes the rows of
the days it covers and inserts them again from the calls (INSERT … SELECT on
PostgreSQL), so it never drifts the way +1/-1 deltas can.

Concurrency: every rebuild of an organization's rows runs in a transaction
holding that organization's advisory lock (PostgreSQL), so two writers of the
same organization rebuild one after the other, and the second one's SELECT
(READ COMMITTED: a fresh snapshot per statement) sees the first one's calls.
One lock per organization rather than per day keeps a transaction that
touches several days from deadlocking with another.
"""

from __future__ import annotations

import itertools
import zlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from django.db import connection, models, transaction
from django.db.models import (
    BigIntegerField,
    Count,
    DecimalField,
    Q,
    QuerySet,
    Sum,
    Value,
)
from django.db.models.functions import Cast, Coalesce, ExtractHour, TruncDate
from django.utils import timezone

from analytics.models import (
    HOURS,
    MEASURE_DECIMALS,
    SENTIMENT_BUCKETS,
    DailyRollup,
    OrgDailyRollup,
    TopicDayRollup,
    TopicRollup,
    bucket_field,
    hour_field,
)
from calls.models import NEUTRAL_SENTIMENT, Call
from resilience.cache import invalidate_tags

# Upper bounds of the sentiment buckets (the last one is open): see DailyRollup.
SENTIMENT_EDGES = (-0.6, -NEUTRAL_SENTIMENT, NEUTRAL_SENTIMENT, 0.6)
MEASURE = DecimalField(max_digits=9, decimal_places=MEASURE_DECIMALS)
# Namespaces the advisory lock keys (bigint space) so they can't collide with other users of advisory locks.
LOCK_NAMESPACE = (zlib.crc32(b"calliq.analytics.rollups") & 0x7FFFFFFF) << 32


# --- Days in the settings time zone ------------------------------------------------


def local_tz() -> timezone.tzinfo:
    """Days are calendar days in settings.TIME_ZONE, for the raw and the rollup path alike."""
    return timezone.get_default_timezone()


def day_start(day: date) -> datetime:
    """The aware moment a local day starts."""
    return datetime.combine(day, time.min, tzinfo=local_tz())


def day_bounds(first: date, last: date) -> tuple[datetime, datetime]:
    """[start, end) of the local days first..last inclusive."""
    return day_start(first), day_start(last + timedelta(days=1))


def local_day(moment: datetime) -> date:
    return timezone.localtime(moment, local_tz()).date()


# --- The measures, shared by the raw path and the rollup builder ------------------------


def with_local_time(calls: QuerySet[Call]) -> QuerySet[Call]:
    tz = local_tz()
    return calls.annotate(local_day=TruncDate("started_at", tzinfo=tz)).alias(
        local_hour=ExtractHour("started_at", tzinfo=tz)
    )


def exact_sum(field: str) -> Coalesce:
    return Coalesce(Sum(Cast(field, MEASURE)), Value(Decimal(0)), output_field=DecimalField())


def int_sum(field: str) -> Coalesce:
    return Coalesce(Sum(field), Value(0), output_field=BigIntegerField())


def sentiment_bucket_filters() -> list[Q]:
    edges = SENTIMENT_EDGES
    filters = [Q(sentiment__lt=edges[0])]
    filters += [Q(sentiment__gte=low, sentiment__lt=high) for low, high in itertools.pairwise(edges)]
    filters.append(Q(sentiment__gte=edges[-1]))
    return filters


def call_measures() -> dict[str, object]:
    """Aggregates over calls (annotated by `with_local_time`), named like DailyRollup's columns."""
    measures: dict[str, object] = {
        "calls": Count("id"),
        "completed": Count("id", filter=Q(status=Call.Status.COMPLETED)),
        "failed": Count("id", filter=Q(status=Call.Status.FAILED)),
        "duration_sum": int_sum("duration_seconds"),
        "score_sum": int_sum("score"),
        "score_count": Count("score"),
        "sentiment_sum": exact_sum("sentiment"),
        "sentiment_count": Count("sentiment"),
        "talk_ratio_sum": exact_sum("talk_ratio"),
        "talk_ratio_count": Count("talk_ratio"),
    }
    for index, condition in enumerate(sentiment_bucket_filters()):
        measures[bucket_field(index)] = Count("id", filter=condition)
    for hour in HOURS:
        measures[hour_field(hour)] = Count("id", filter=Q(local_hour=hour))
    return measures


MEASURE_FIELDS = [
    "calls", "completed", "failed", "duration_sum", "score_sum", "score_count", "sentiment_sum",
    "sentiment_count", "talk_ratio_sum", "talk_ratio_count",
    *[bucket_field(i) for i in range(SENTIMENT_BUCKETS)], *[hour_field(h) for h in HOURS],
]  # fmt: skip


def rollup_measures() -> dict[str, object]:
    """The same measures, re-aggregated from DailyRollup rows. No COALESCE: every
    stored sum is NOT NULL, so a group's sum is never NULL."""
    return {name: Sum(name) for name in MEASURE_FIELDS}


# --- Topics ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TopicQuery:
    """Counts of calls per topic over calls of one organization in [start, end)."""

    organization_id: int
    start: datetime | None
    end: datetime | None
    rep_id: int | None = None
    outcome: str | None = None
    unassigned_only: bool = False


def _topic_where(query: TopicQuery) -> tuple[str, list[object]]:
    clauses = ["c.organization_id = %s"]
    params: list[object] = [query.organization_id]
    if query.start is not None:
        clauses.append("c.started_at >= %s")
        params.append(query.start)
    if query.end is not None:
        clauses.append("c.started_at < %s")
        params.append(query.end)
    if query.rep_id is not None:
        clauses.append("c.rep_id = %s")
        params.append(query.rep_id)
    if query.unassigned_only:
        clauses.append("c.rep_id IS NULL")
    if query.outcome is not None:
        clauses.append("c.outcome = %s")
        params.append(query.outcome)
    return " AND ".join(clauses), params


def topic_source_sql(query: TopicQuery) -> tuple[str, list[object]]:
    """FROM/WHERE over one row per (call, distinct normalised topic), PostgreSQL only;
    columns: c (the call), day (local date), t.topic."""
    where, params = _topic_where(query)
    sql = f"""
        FROM calls_call c
        JOIN calls_callanalysis a ON a.call_id = c.id
        CROSS JOIN LATERAL (
            SELECT DISTINCT lower(btrim(x)) AS topic
            FROM jsonb_array_elements_text(
                CASE WHEN jsonb_typeof(a.topics) = 'array' THEN a.topics ELSE '[]'::jsonb END
            ) AS x
        ) t
        WHERE {where} AND t.topic <> ''
    """
    return sql, params


def local_day_sql() -> tuple[str, list[object]]:
    return "(c.started_at AT TIME ZONE %s)::date", [timezone.get_default_timezone_name()]


def python_topic_rows(query: TopicQuery) -> Iterable[tuple[date, int | None, str, str]]:
    """(day, rep_id, outcome, topic) per call and distinct topic: the portable path (SQLite)."""
    calls = Call.objects.filter(organization_id=query.organization_id, analysis__isnull=False)
    if query.start is not None:
        calls = calls.filter(started_at__gte=query.start)
    if query.end is not None:
        calls = calls.filter(started_at__lt=query.end)
    if query.rep_id is not None:
        calls = calls.filter(rep_id=query.rep_id)
    if query.unassigned_only:
        calls = calls.filter(rep__isnull=True)
    if query.outcome is not None:
        calls = calls.filter(outcome=query.outcome)
    for started_at, rep_id, outcome, topics in calls.values_list(
        "started_at", "rep_id", "outcome", "analysis__topics"
    ).iterator():
        if not isinstance(topics, list):
            continue
        names = {str(t).strip().lower() for t in topics if isinstance(t, str | int | float)}
        for topic in names - {""}:
            yield local_day(started_at), rep_id, outcome, topic


# --- Rebuilding ---------------------------------------------------------------------------


def _lock_organization(organization_id: int) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [LOCK_NAMESPACE + organization_id])


class _AllReps:
    """Rebuild every rep's rows (the default), as opposed to one rep's or the unassigned ones."""

    def __repr__(self) -> str:
        return "ALL_REPS"


ALL_REPS = _AllReps()
RepSelection = int | None | _AllReps


def _for_rep(rows: QuerySet, rep_id: RepSelection) -> QuerySet:
    if rep_id is ALL_REPS:
        return rows
    return rows.filter(rep__isnull=True) if rep_id is None else rows.filter(rep_id=rep_id)


def rebuild_rollups(
    organization_id: int, first: date | None = None, last: date | None = None, *, rep_id: RepSelection = ALL_REPS
) -> int:
    """Recompute the organization's rollups for local days first..last
    (inclusive; both None: every day), for every rep or only `rep_id` (None:
    the unassigned calls). One saved call needs only its rep's rows of its
    day: about 1/12 of the day's calls in the demo data. Idempotent; returns
    the DailyRollup rows written."""
    if (first is None) != (last is None):
        raise ValueError("Give both first and last, or neither.")
    start = end = None
    if first is not None:
        start, end = day_bounds(first, last)
    with transaction.atomic():
        _lock_organization(organization_id)
        daily = _for_rep(DailyRollup.objects.filter(organization_id=organization_id), rep_id)
        topics = _for_rep(TopicRollup.objects.filter(organization_id=organization_id), rep_id)
        topic_days = TopicDayRollup.objects.filter(organization_id=organization_id)
        org_days = OrgDailyRollup.objects.filter(organization_id=organization_id)
        if first is not None:
            daily = daily.filter(day__gte=first, day__lte=last)
            topics = topics.filter(day__gte=first, day__lte=last)
            topic_days = topic_days.filter(day__gte=first, day__lte=last)
            org_days = org_days.filter(day__gte=first, day__lte=last)
        for rows in (daily, topics, topic_days, org_days):
            rows._raw_delete(rows.db)
        written = _insert_daily(organization_id, start, end, rep_id)
        _insert_topics(
            TopicQuery(
                organization_id,
                start,
                end,
                rep_id=None if rep_id is ALL_REPS else rep_id,
                unassigned_only=rep_id is None,
            )
        )
        # The per-organization rows sum every rep's, so they are redone for whole days.
        _insert_topic_days(organization_id, first, last)
        _insert_org_days(organization_id, first, last)
    # Cached analytics were computed from the old rows. Bumped after the commit,
    # so no reader can cache the old numbers under the new version.
    invalidate_tags(f"org:{organization_id}")
    return written


def _insert_daily(organization_id: int, start: datetime | None, end: datetime | None, rep_id: RepSelection) -> int:
    calls = _for_rep(Call.objects.filter(organization_id=organization_id), rep_id)
    if start is not None:
        calls = calls.filter(started_at__gte=start, started_at__lt=end)
    grouped = with_local_time(calls).values("local_day", "rep_id", "outcome").annotate(**call_measures()).order_by()
    if connection.vendor != "postgresql":
        rows = [DailyRollup(organization_id=organization_id, day=row.pop("local_day"), **row) for row in grouped]
        DailyRollup.objects.bulk_create(rows, batch_size=500)
        return len(rows)
    select_sql, params = grouped.query.sql_with_params()
    columns = ", ".join(MEASURE_FIELDS)
    sql = (
        f"INSERT INTO {DailyRollup._meta.db_table} (organization_id, day, rep_id, outcome, {columns}) "
        f"SELECT %s, q.local_day, q.rep_id, q.outcome, {', '.join('q.' + c for c in MEASURE_FIELDS)} "
        f"FROM ({select_sql}) q"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [organization_id, *params])
        return cursor.rowcount


def _insert_topics(query: TopicQuery) -> None:
    if connection.vendor != "postgresql":
        counts = Counter(python_topic_rows(query))
        TopicRollup.objects.bulk_create(
            [
                TopicRollup(
                    organization_id=query.organization_id,
                    day=day,
                    rep_id=rep_id,
                    outcome=outcome,
                    topic=topic,
                    calls=n,
                )
                for (day, rep_id, outcome, topic), n in counts.items()
            ],
            batch_size=500,
        )
        return
    source, params = topic_source_sql(query)
    day_sql, day_params = local_day_sql()
    sql = (
        f"INSERT INTO {TopicRollup._meta.db_table} (organization_id, day, rep_id, outcome, topic, calls) "
        f"SELECT c.organization_id, {day_sql}, c.rep_id, c.outcome, t.topic, COUNT(*) {source} "
        "GROUP BY 1, 2, 3, 4, 5"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [*day_params, *params])


def analyze_rollups() -> None:
    """Refresh the planner's statistics after rebuilding many rows (PostgreSQL), so
    dashboard queries keep their index plans without waiting for autovacuum."""
    if connection.vendor == "postgresql":
        tables = ", ".join(m._meta.db_table for m in (DailyRollup, OrgDailyRollup, TopicRollup, TopicDayRollup))
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {tables}")


def _insert_org_days(organization_id: int, first: date | None, last: date | None) -> None:
    rows = DailyRollup.objects.filter(organization_id=organization_id)
    if first is not None:
        rows = rows.filter(day__gte=first, day__lte=last)
    # Aliased s_<name>: an annotation may not shadow the column it sums.
    totals = rows.values("day", "outcome").annotate(**{f"s_{n}": Sum(n) for n in MEASURE_FIELDS}).order_by()
    columns = {"day": "day", "outcome": "outcome"} | {n: f"s_{n}" for n in MEASURE_FIELDS}
    _insert_totals(OrgDailyRollup, organization_id, totals, columns)


def _insert_topic_days(organization_id: int, first: date | None, last: date | None) -> None:
    fine = TopicRollup.objects.filter(organization_id=organization_id)
    if first is not None:
        fine = fine.filter(day__gte=first, day__lte=last)
    totals = fine.values("day", "outcome", "topic").annotate(total=Sum("calls")).order_by()
    columns = {"day": "day", "outcome": "outcome", "topic": "topic", "calls": "total"}
    _insert_totals(TopicDayRollup, organization_id, totals, columns)


def _insert_totals(model: type[models.Model], organization_id: int, totals: QuerySet, columns: dict[str, str]) -> None:
    """Store the aggregated `totals` as rows of `model` for the organization;
    `columns` maps each model column to its key in `totals`. On PostgreSQL one
    INSERT … SELECT keeps the rows in the server; elsewhere they pass through Python."""
    if connection.vendor != "postgresql":
        model.objects.bulk_create(
            [model(organization_id=organization_id, **{c: r[k] for c, k in columns.items()}) for r in totals],
            batch_size=500,
        )
        return
    select_sql, params = totals.query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {model._meta.db_table} (organization_id, {', '.join(columns)}) "
            f"SELECT %s, {', '.join('q.' + k for k in columns.values())} FROM ({select_sql}) q",
            [organization_id, *params],
        )


def rebuild_places(organization_id: int, places: Iterable[tuple[date, int | None]]) -> None:
    """Recompute one organization's rows of the given (local day, rep) pairs."""
    with transaction.atomic():
        for day, rep_id in sorted(set(places), key=lambda place: (place[0], place[1] or 0)):
            rebuild_rollups(organization_id, day, day, rep_id=rep_id)
