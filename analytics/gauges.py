"""Business gauges for /metrics and the monitoring pages, registered from
AnalyticsConfig.ready(): read from the daily rollups, so each is one indexed
aggregate (the collector caches them for 15 s per process). The rollups are
keyed by the day a call started, so the "today" gauges count calls started
today (local day), whenever their pipeline finished; their names say so."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import Sum

from analytics.forms import local_today
from analytics.models import DailyRollup
from resilience.monitoring.collector import register_gauge

ACTIVE_DAYS = 30


def calls_started_today_finished() -> float:
    totals = DailyRollup.objects.filter(day=local_today()).aggregate(completed=Sum("completed"), failed=Sum("failed"))
    return float((totals["completed"] or 0) + (totals["failed"] or 0))


def calls_started_today_failed() -> float:
    return float(DailyRollup.objects.filter(day=local_today()).aggregate(n=Sum("failed"))["n"] or 0)


def active_organizations() -> float:
    since = local_today() - timedelta(days=ACTIVE_DAYS - 1)
    return float(DailyRollup.objects.filter(day__gte=since).values("organization").distinct().count())


def register() -> None:
    register_gauge(
        "calls_started_today_finished",
        "Calls started today (local day) whose pipeline has finished (completed or failed).",
        calls_started_today_finished,
    )
    register_gauge(
        "calls_started_today_failed",
        "Calls started today (local day) whose pipeline failed.",
        calls_started_today_failed,
    )
    register_gauge(
        "active_organizations", f"Organizations with calls in the last {ACTIVE_DAYS} days.", active_organizations
    )
