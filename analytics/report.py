"""The comprehensive analytics of one organization over a date range: KPIs
against the previous period, calls per day by outcome, score and sentiment
trends, sentiment distribution, rep leaderboard, top topics with their trend
and the weekday-by-hour heatmap.

`comprehensive_analytics(organization, params)` is the one function the page
and the API call; its result is plain JSON-ready data (str, int, float, None,
lists, dicts), so it can be cached as it is. It reads the daily rollups (four
queries whatever the number of calls). `build_report` does the arithmetic on
exact sums from any source of the same rows; the tests and benchmarks feed it
raw aggregation over the calls (tests/analytics/raw_reference.py), the
reference the rollups must equal.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from django.db.models import BigIntegerField, Case, DateField, F, Q, QuerySet, Sum, Value, When
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
    rollup_measures,
)
from calls.models import NAMED_OUTCOMES, outcome_name, outcome_value
from calls.tenancy.models import Organization
from resilience.cache import cache_service

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


# --- Fetching from the rollups -------------------------------------------------------------


def filtered_rows(rows: QuerySet, params: AnalyticsParams) -> QuerySet:
    """Rows (rollups or calls alike) narrowed to the params' rep and outcome."""
    if params.rep_id is not None:
        rows = rows.filter(rep_id=params.rep_id)
    if params.outcome is not None:
        rows = rows.filter(outcome=params.outcome_db)
    return rows


@dataclass(frozen=True)
class Fetchers:
    """Where build_report gets its rows. Any source must return the same row
    shapes: the rollups here, raw aggregation over calls in the tests' and
    benchmarks' reference (tests/analytics/raw_reference.py)."""

    # (organization, params) → rows of day (None for the previous period), outcome, every measure.
    daily_rows: Callable[[Organization, AnalyticsParams], list[dict]]
    # (organization, params) → per rep: REP_NAME_FIELDS, LEADER_MEASURES' sums, won, lost.
    leader_rows: Callable[[Organization, AnalyticsParams], list[dict]]
    # (organization, params) → (topic, current calls, previous calls) of the top topics.
    topic_totals: Callable[[Organization, AnalyticsParams], list[tuple]]
    # (organization, params, topics) → (day, topic, calls) in the current period.
    topic_daily: Callable[[Organization, AnalyticsParams, list[str]], list[tuple[date, str, int]]]


REP_NAME_FIELDS = ("rep_id", "rep__first_name", "rep__last_name", "rep__username")
LEADER_MEASURES = ("calls", "duration_sum", "score_sum", "score_count", "talk_ratio_sum", "talk_ratio_count")


def _daily_rows(organization: Organization, params: AnalyticsParams) -> list[dict]:
    # The per-organization table unless filtering by rep: 12x fewer rows with twelve reps.
    table = OrgDailyRollup if params.rep_id is None else DailyRollup
    rows = table.objects.filter(organization=organization, day__gte=params.previous_first, day__lte=params.last)
    period_day = Case(When(day__lt=params.first, then=Value(None)), default=F("day"), output_field=DateField())
    grouped = filtered_rows(rows, params).annotate(period_day=period_day).values("period_day", "outcome")
    return [{"day": row.pop("period_day"), **row} for row in grouped.annotate(**rollup_measures()).order_by()]


def _leader_rows(organization: Organization, params: AnalyticsParams) -> list[dict]:
    # Re-sum the stored sums. won/lost first: once "calls" is an annotation,
    # Sum("calls") would mean the aggregate.
    won = Coalesce(Sum("calls", filter=Q(outcome="won")), Value(0), output_field=BigIntegerField())
    lost = Coalesce(Sum("calls", filter=Q(outcome="lost")), Value(0), output_field=BigIntegerField())
    measures = {"won": won, "lost": lost} | {name: Sum(name) for name in LEADER_MEASURES}
    rows = DailyRollup.objects.filter(organization=organization, day__gte=params.first, day__lte=params.last)
    return list(filtered_rows(rows, params).values(*REP_NAME_FIELDS).annotate(**measures).order_by())


def _topic_table(params: AnalyticsParams) -> type[TopicRollup] | type[TopicDayRollup]:
    """Per-rep topic rows only when filtering by rep: the per-outcome table is 8x smaller."""
    return TopicDayRollup if params.rep_id is None else TopicRollup


def _topic_totals(organization: Organization, params: AnalyticsParams) -> list[tuple]:
    rows = filtered_rows(_topic_table(params).objects.filter(organization=organization), params)
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


def _topic_daily(organization: Organization, params: AnalyticsParams, topics: list[str]) -> list[tuple[date, str, int]]:
    if not topics:
        return []
    rows = filtered_rows(_topic_table(params).objects.filter(organization=organization), params)
    rows = rows.filter(day__gte=params.first, day__lte=params.last, topic__in=topics)
    return [(r["day"], r["topic"], r["n"]) for r in rows.values("day", "topic").annotate(n=Sum("calls")).order_by()]


ROLLUPS = Fetchers(
    daily_rows=_daily_rows, leader_rows=_leader_rows, topic_totals=_topic_totals, topic_daily=_topic_daily
)


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


def comprehensive_analytics(organization: Organization, params: AnalyticsParams) -> dict:
    """Everything the analytics page and GET /api/v1/analytics/comprehensive show, from the rollups."""
    return build_report(organization, params, ROLLUPS)


def build_report(organization: Organization, params: AnalyticsParams, fetch: Fetchers) -> dict:
    """The report from the rows `fetch` returns: the same arithmetic on exact sums whatever the source."""
    daily_rows = fetch.daily_rows(organization, params)
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

    top = fetch.topic_totals(organization, params)
    topic_names = [topic for topic, _, _ in top]
    series: dict[str, dict[date, int]] = defaultdict(dict)
    for day, topic, n in fetch.topic_daily(organization, params, topic_names):
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
        "leaderboard": _leaderboard(fetch.leader_rows(organization, params), params.sort),
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
