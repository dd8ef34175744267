"""The business gauges count by the day a call started (the rollups' key)."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from analytics.gauges import calls_started_today_failed, calls_started_today_finished
from calls.models import Call
from tests import factories


def test_the_today_gauges_count_calls_started_today(org, member):
    now = timezone.now()
    factories.make_call(org, rep=member.user, started_at=now, status=Call.Status.COMPLETED)
    factories.make_call(org, rep=member.user, started_at=now, status=Call.Status.FAILED)
    # Started two days ago: not today's, whenever its pipeline finished.
    factories.make_call(org, rep=member.user, started_at=now - timedelta(days=2), status=Call.Status.COMPLETED)
    assert calls_started_today_finished() == 2.0
    assert calls_started_today_failed() == 1.0
