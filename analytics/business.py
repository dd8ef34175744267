"""Business metrics for staff, across every organization: calls processed per
day, pipeline success rate, average processing time, active organizations and
users. Day counts come from the daily rollups (a processed call is one that
completed or failed, counted on its local call day); processing time needs the
calls themselves and is bounded to the recent window."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.models import User
from django.db.models import Avg, BigIntegerField, Count, DurationField, ExpressionWrapper, F, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from analytics.forms import local_today
from analytics.models import DailyRollup
from analytics.report import _ratio
from analytics.rollups import day_bounds
from calls.models import CallAnalysis

WINDOW_DAYS = 30


def _sum(name: str) -> Coalesce:
    return Coalesce(Sum(name), Value(0), output_field=BigIntegerField())


def business_metrics(window_days: int = WINDOW_DAYS) -> dict:
    last = local_today()
    first = last - timedelta(days=window_days - 1)
    rows = {
        row["day"]: row
        for row in DailyRollup.objects.filter(day__gte=first, day__lte=last)
        .values("day")
        .annotate(calls=_sum("calls"), completed=_sum("completed"), failed=_sum("failed"))
        .order_by()
    }
    per_day = []
    for offset in range(window_days):
        day = first + timedelta(days=offset)
        row = rows.get(day, {"calls": 0, "completed": 0, "failed": 0})
        per_day.append(
            {
                "day": day.isoformat(),
                "calls": row["calls"],
                "processed": row["completed"] + row["failed"],
                "completed": row["completed"],
                "failed": row["failed"],
                "success_rate": _ratio(row["completed"], row["completed"] + row["failed"]),
            }
        )
    completed = sum(d["completed"] for d in per_day)
    failed = sum(d["failed"] for d in per_day)
    start, end = day_bounds(first, last)
    # Upload to finished analysis, for calls analysed in the window.
    processing = CallAnalysis.objects.filter(call__started_at__gte=start, call__started_at__lt=end).aggregate(
        average=Avg(ExpressionWrapper(F("created_at") - F("call__created_at"), output_field=DurationField()))
    )["average"]
    since = timezone.now() - timedelta(days=window_days)
    return {
        "window": {"from": first.isoformat(), "to": last.isoformat(), "days": window_days},
        "per_day": per_day,
        "processed": completed + failed,
        "completed": completed,
        "failed": failed,
        "success_rate": _ratio(completed, completed + failed),
        "average_processing_seconds": None if processing is None else round(processing.total_seconds(), 1),
        "active_organizations": DailyRollup.objects.filter(day__gte=first, day__lte=last)
        .values("organization")
        .distinct()
        .count(),
        "active_users": User.objects.filter(is_active=True, last_login__gte=since).count(),
        "reps_with_calls": DailyRollup.objects.filter(day__gte=first, day__lte=last, rep__isnull=False)
        .values("rep")
        .distinct()
        .count(),
        "users": User.objects.filter(is_active=True).aggregate(n=Count("id"))["n"],
    }
