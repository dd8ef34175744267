"""The comprehensive analytics of one organization over a date range: KPIs
against the previous period, calls per day by outcome, score and sentiment
trends, sentiment distribution, rep leaderboard, top topics with their trend
and the weekday-by-hour heatmap.

`comprehensive_analytics(organization, params)` is the one function the page
and the API call; its result is plain JSON-ready data (str, int, float, None,
lists, dicts), so it can be cached as it is. It reads the daily rollups
(`source="rollup"`, four queries whatever the number of calls) or aggregates
the calls directly (`source="raw"`, the reference the rollups are tested and
benchmarked against); both run the same arithmetic on exact sums, so they
return equal results.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from django.db import connection
from django.db.models import BigIntegerField, Case, Count, DateField, F, Q, QuerySet, Sum, Value, When
from django.db.models.functions import Coalesce

from analytics.models import (
    HOURS,
    SENTIMENT_BUCKETS,
    DailyRollup,
    OrgDailyRollup,
    TopicDayRollup,
    TopicRollup,
    bucket_field,
    hour_field,
)
from analytics.rollups import (
    MEASURE_FIELDS,
    SENTIMENT_EDGES,
    TopicQuery,
    call_measures,
    day_bounds,
    exact_sum,
    int_sum,
    local_day_sql,
    python_topic_rows,
    rollup_measures,
    topic_source_sql,
    with_local_time,
)
from calls.models import NAMED_OUTCOMES, Call, outcome_name, outcome_value
from calls.tenancy.models import Organization
from resilience.cache import cache_service

Source = Literal["rollup", "raw"]

MAX_RANGE_DAYS = 366
TOP_TOPICS = 8
SENTIMENT_LABELS = ["Very negative", "Negative", "Neutral", "Positive", "Very positive"]
SENTIMENT_RANGES = [
    f"< {SENTIMENT_EDGES[0]}",
    *(f"{low} to {high}" for low, high in itertools.pairwise(SENTIMENT_EDGES)),
    f">= {SENTIMENT_EDGES[-1]}",
]
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
LEADERBOARD_SORTS = {"calls", "score", "talk_ratio", "win_rate", "talk_time", "name"}
FOUR = Decimal("0.0001")
HOUR_FIELDS = [(hour, hour_field(hour)) for hour in HOURS]


@dataclass(frozen=True)
class AnalyticsParams:
    """What to analyse: local days first..last inclusive, optionally one rep
    and one outcome ("won", "lost", "follow_up", "no_decision", "unknown")."""

    first: date
    last: date
    rep_id: int | None = None
    outcome: str | None = None
    sort: str = "-calls"

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def previous_first(self) -> date:
        return self.first - timedelta(days=self.days)

    @property
    def previous_last(self) -> date:
        return self.first - timedelta(days=1)

    @property
    def outcome_db(self) -> str | None:
        return None if self.outcome is None else outcome_value(self.outcome)

    def cache_key(self) -> str:
        """Identifies the result for one organization (the caller adds the organization)."""
        return f"{self.first}:{self.last}:{self.rep_id or '-'}:{self.outcome or '-'}:{self.sort}"


# --- Exact arithmetic -----------------------------------------------------------------


def _ratio(numerator: Decimal | int, denominator: int) -> float | None:
    """numerator/denominator to 4 decimals, from exact inputs, so both paths agree to the last digit."""
    if not denominator:
        return None
    return float((Decimal(numerator) / Decimal(denominator)).quantize(FOUR, rounding=ROUND_HALF_EVEN))


@dataclass
class Totals:
    """Sums of the measures over some rows."""

    values: dict[str, Decimal | int] = field(default_factory=lambda: dict.fromkeys(MEASURE_FIELDS, 0))
    by_outcome: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, row: dict, outcome: str) -> None:
        for name in MEASURE_FIELDS:
            self.values[name] += row[name]
        self.by_outcome[outcome] += row["calls"]

    def __getitem__(self, name: str) -> Decimal | int:
        return self.values[name]

    def kpis(self) -> dict[str, float | int | None]:
        v = self.values
        won, lost = self.by_outcome["won"], self.by_outcome["lost"]
        return {
            "calls": int(v["calls"]),
            "talk_time_seconds": int(v["duration_sum"]),
            "average_duration_seconds": _ratio(v["duration_sum"], v["calls"]),
            "average_score": _ratio(v["score_sum"], v["score_count"]),
            "average_sentiment": _ratio(v["sentiment_sum"], v["sentiment_count"]),
            "win_rate": _ratio(won, won + lost),
            "failure_rate": _ratio(v["failed"], v["completed"] + v["failed"]),
        }


KPI_LABELS = [
    ("calls", "Calls", "count"),
    ("talk_time_seconds", "Total talk time", "duration"),
    ("average_duration_seconds", "Average duration", "duration"),
    ("average_score", "Average score", "score"),
    ("average_sentiment", "Average sentiment", "sentiment"),
    ("win_rate", "Win rate", "percent"),
    ("failure_rate", "Processing failure rate", "percent"),
]


def _kpi_list(current: dict, previous: dict) -> list[dict]:
    kpis = []
    for key, label, unit in KPI_LABELS:
        value, before = current[key], previous[key]
        change = change_ratio = None
        if value is not None and before is not None:
            change = round(value - before, 4)
            if before:
                change_ratio = round((value - before) / abs(before), 4)
        kpis.append(
            {
                "key": key,
                "label": label,
                "unit": unit,
                "value": value,
                "previous": before,
                "change": change,
                "change_ratio": change_ratio,
                # Lower is better only for failures.
                "better": None if not change else (change < 0 if key == "failure_rate" else change > 0),
            }
        )
    return kpis


# --- Fetching: rollup and raw paths return the same row shapes ---------------------------


def _filtered(rows: QuerySet, params: AnalyticsParams) -> QuerySet:
    if params.rep_id is not None:
        rows = rows.filter(rep_id=params.rep_id)
    if params.outcome is not None:
        rows = rows.filter(outcome=params.outcome_db)
    return rows


def _daily_rows(organization: Organization, params: AnalyticsParams, source: Source) -> list[dict]:
    """Rows of (day, outcome, every measure): per day in the current period, and
    with day None for the whole previous period (only its totals are shown)."""
    if source == "rollup":
        # The per-organization table unless filtering by rep: 12x fewer rows with twelve reps.
        table = OrgDailyRollup if params.rep_id is None else DailyRollup
        rows = table.objects.filter(organization=organization, day__gte=params.previous_first, day__lte=params.last)
        period_day = Case(When(day__lt=params.first, then=Value(None)), default=F("day"), output_field=DateField())
        grouped = _filtered(rows, params).annotate(period_day=period_day).values("period_day", "outcome")
        return [{"day": row.pop("period_day"), **row} for row in grouped.annotate(**rollup_measures()).order_by()]
    start, end = day_bounds(params.previous_first, params.last)
    calls = _filtered(Call.objects.for_org(organization).started_between(start, end), params)
    start_of_current = day_bounds(params.first, params.first)[0]
    period_day = Case(
        When(started_at__lt=start_of_current, then=Value(None)), default=F("local_day"), output_field=DateField()
    )
    grouped = with_local_time(calls).annotate(period_day=period_day).values("period_day", "outcome")
    return [{"day": row.pop("period_day"), **row} for row in grouped.annotate(**call_measures()).order_by()]


def _leader_measures(*, from_rollups: bool) -> dict[str, object]:
    if from_rollups:  # re-sum the stored sums
        won = Coalesce(Sum("calls", filter=Q(outcome="won")), Value(0), output_field=BigIntegerField())
        lost = Coalesce(Sum("calls", filter=Q(outcome="lost")), Value(0), output_field=BigIntegerField())
        names = ["calls", "duration_sum", "score_sum", "score_count", "talk_ratio_sum", "talk_ratio_count"]
        # won/lost first: once "calls" is an annotation, Sum("calls") would mean the aggregate.
        return {"won": won, "lost": lost} | {n: Sum(n) for n in names}
    return {
        "calls": Count("id"),
        "duration_sum": int_sum("duration_seconds"),
        "score_sum": int_sum("score"),
        "score_count": Count("score"),
        "talk_ratio_sum": exact_sum("talk_ratio"),
        "talk_ratio_count": Count("talk_ratio"),
        "won": Count("id", filter=Q(outcome="won")),
        "lost": Count("id", filter=Q(outcome="lost")),
    }


REP_NAME_FIELDS = ("rep_id", "rep__first_name", "rep__last_name", "rep__username")


def _leader_rows(organization: Organization, params: AnalyticsParams, source: Source) -> list[dict]:
    if source == "rollup":
        rows = DailyRollup.objects.filter(organization=organization, day__gte=params.first, day__lte=params.last)
        return list(
            _filtered(rows, params).values(*REP_NAME_FIELDS).annotate(**_leader_measures(from_rollups=True)).order_by()
        )
    start, end = day_bounds(params.first, params.last)
    calls = _filtered(Call.objects.for_org(organization).started_between(start, end), params)
    return list(calls.values(*REP_NAME_FIELDS).annotate(**_leader_measures(from_rollups=False)).order_by())


def _topic_table(params: AnalyticsParams) -> type[TopicRollup] | type[TopicDayRollup]:
    """Per-rep topic rows only when filtering by rep: the per-outcome table is 8x smaller."""
    return TopicDayRollup if params.rep_id is None else TopicRollup


def _topic_totals(organization: Organization, params: AnalyticsParams, source: Source) -> list[tuple]:
    """(topic, current calls, previous calls) for the top topics of the current period."""
    if source == "rollup":
        rows = _filtered(_topic_table(params).objects.filter(organization=organization), params)
        rows = rows.filter(day__gte=params.previous_first, day__lte=params.last)
        totals = (
            rows.values("topic")
            .annotate(
                current=Coalesce(Sum("calls", filter=Q(day__gte=params.first)), 0),
                previous=Coalesce(Sum("calls", filter=Q(day__lt=params.first)), 0),
            )
            .filter(current__gt=0)
            .order_by("-current", "topic")[:TOP_TOPICS]
        )
        return [(r["topic"], r["current"], r["previous"]) for r in totals]
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for day, topic, n in _raw_topic_day_counts(organization, params, params.previous_first):
        counts[topic][0 if day >= params.first else 1] += n
    ranked = sorted(((t, c, p) for t, (c, p) in counts.items() if c), key=lambda r: (-r[1], r[0]))
    return ranked[:TOP_TOPICS]


def _raw_topic_day_counts(
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


def _topic_daily(
    organization: Organization, params: AnalyticsParams, source: Source, topics: list[str]
) -> list[tuple[date, str, int]]:
    if not topics:
        return []
    if source == "raw":
        return _raw_topic_day_counts(organization, params, params.first, topics)
    rows = _filtered(_topic_table(params).objects.filter(organization=organization), params)
    rows = rows.filter(day__gte=params.first, day__lte=params.last, topic__in=topics)
    return [(r["day"], r["topic"], r["n"]) for r in rows.values("day", "topic").annotate(n=Sum("calls")).order_by()]


# --- Assembling ------------------------------------------------------------------------------


def _rep_name(row: dict) -> str:
    if row["rep_id"] is None:
        return "Unassigned"
    full = f"{row['rep__first_name']} {row['rep__last_name']}".strip()
    return full or row["rep__username"]


def _leaderboard(rows: list[dict], sort: str) -> list[dict]:
    board = [
        {
            "rep_id": row["rep_id"],
            "name": _rep_name(row),
            "calls": int(row["calls"]),
            "talk_time_seconds": int(row["duration_sum"]),
            "average_score": _ratio(row["score_sum"], row["score_count"]),
            "talk_ratio": _ratio(row["talk_ratio_sum"], row["talk_ratio_count"]),
            "won": int(row["won"]),
            "lost": int(row["lost"]),
            "win_rate": _ratio(row["won"], row["won"] + row["lost"]),
        }
        for row in rows
    ]
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    column = {"score": "average_score", "talk_time": "talk_time_seconds"}.get(key, key)
    # Stable tie-break on name, then id; reps without a value sort last either way.
    board.sort(key=lambda r: (r["name"].lower(), r["rep_id"] or 0))
    present = [r for r in board if r[column] is not None]
    missing = [r for r in board if r[column] is None]
    present.sort(key=lambda r: r[column].lower() if column == "name" else r[column], reverse=descending)
    return present + missing


def comprehensive_analytics(organization: Organization, params: AnalyticsParams, *, source: Source = "rollup") -> dict:
    """Everything the analytics page and GET /api/v1/analytics/comprehensive show."""
    daily_rows = _daily_rows(organization, params, source)
    current, previous = Totals(), Totals()
    days = [params.first + timedelta(days=i) for i in range(params.days)]
    per_day: dict[date, Totals] = {day: Totals() for day in days}
    heatmap = [[0] * 24 for _ in WEEKDAYS]
    for row in daily_rows:
        outcome = outcome_name(row["outcome"])
        if row["day"] is None:
            previous.add(row, outcome)
            continue
        current.add(row, outcome)
        per_day[row["day"]].add(row, outcome)
        cells = heatmap[row["day"].weekday()]
        for hour, name in HOUR_FIELDS:
            cells[hour] += row[name]

    outcome_keys = [key for key, _ in NAMED_OUTCOMES]
    calls_per_day, score_trend, sentiment_trend = [], [], []
    for day in days:
        totals = per_day[day]
        iso = day.isoformat()
        calls_per_day.append(
            {"day": iso, "total": int(totals["calls"])} | {k: totals.by_outcome[k] for k in outcome_keys}
        )
        score_trend.append(
            {
                "day": iso,
                "average": _ratio(totals["score_sum"], totals["score_count"]),
                "calls": int(totals["score_count"]),
            }
        )
        sentiment_trend.append(
            {
                "day": iso,
                "average": _ratio(totals["sentiment_sum"], totals["sentiment_count"]),
                "calls": int(totals["sentiment_count"]),
            }
        )

    top = _topic_totals(organization, params, source)
    topic_names = [topic for topic, _, _ in top]
    series: dict[str, dict[date, int]] = defaultdict(dict)
    for day, topic, n in _topic_daily(organization, params, source, topic_names):
        series[topic][day] = int(n)
    topics = [
        {
            "topic": topic,
            "calls": int(now),
            "previous_calls": int(before),
            "change": int(now) - int(before),
            "change_ratio": round((now - before) / before, 4) if before else None,
            "daily": [series[topic].get(day, 0) for day in days],
        }
        for topic, now, before in top
    ]

    return {
        "organization": {"id": organization.pk, "slug": organization.slug, "name": organization.name},
        "range": {
            "from": params.first.isoformat(),
            "to": params.last.isoformat(),
            "days": params.days,
            "previous_from": params.previous_first.isoformat(),
            "previous_to": params.previous_last.isoformat(),
        },
        "filters": {"rep": params.rep_id, "outcome": params.outcome, "sort": params.sort},
        "kpis": _kpi_list(current.kpis(), previous.kpis()),
        "outcomes": [{"key": key, "label": label} for key, label in NAMED_OUTCOMES],
        "calls_per_day": calls_per_day,
        "score_trend": score_trend,
        "sentiment_trend": sentiment_trend,
        "sentiment_distribution": [
            {
                "bucket": index,
                "label": SENTIMENT_LABELS[index],
                "range": SENTIMENT_RANGES[index],
                "calls": int(current[bucket_field(index)]),
            }
            for index in range(SENTIMENT_BUCKETS)
        ],
        "leaderboard": _leaderboard(_leader_rows(organization, params, source), params.sort),
        "topics": topics,
        "heatmap": {"weekdays": WEEKDAYS, "hours": list(HOURS), "calls": heatmap},
    }


def cached_comprehensive_analytics(organization: Organization, params: AnalyticsParams) -> dict[str, Any]:
    """`comprehensive_analytics` through the shared cache (medium preset). The
    result is the same for every member of the organization, so it is keyed by
    organization and parameters only, and tagged `org:<id>`: any change to the
    organization's calls makes it stale on the next request."""
    key = f"comprehensive:{organization.pk}:{params.cache_key()}"
    return (
        cache_service()
        .get_or_set(
            key,
            lambda: comprehensive_analytics(organization, params),
            namespace="analytics",
            preset="medium",
            tags=[f"org:{organization.pk}"],
        )
        .value
    )
