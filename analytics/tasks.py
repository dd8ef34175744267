"""Periodic repair of the rollups (see CELERY_BEAT_SCHEDULE in settings).

The receivers keep rollups current; these tasks make them right again after
anything that bypassed the receivers (raw SQL, a crash between commit and a
bulk-change signal). Both are idempotent rebuilds from the calls.
"""

from __future__ import annotations

from datetime import timedelta

from celery import shared_task
from django.utils import timezone

from analytics.rollups import analyze_rollups, local_day, local_tz, rebuild_rollups
from calls.tenancy.models import Organization


@shared_task(acks_late=True)
def repair_recent_rollups(days: int = 3) -> int:
    """Rebuild the last `days` local days of every organization; returns the rows written."""
    today = local_day(timezone.now().astimezone(local_tz()))
    first = today - timedelta(days=days - 1)
    return sum(rebuild_rollups(org_id, first, today) for org_id in Organization.objects.values_list("id", flat=True))


@shared_task(acks_late=True)
def rebuild_all_rollups() -> int:
    """Rebuild every organization's rollups from scratch, one organization per transaction."""
    written = sum(rebuild_rollups(org_id) for org_id in Organization.objects.values_list("id", flat=True))
    analyze_rollups()
    return written
