"""Builders and walkers shared by the dashboard tests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from calls.filters import Sort
from calls.keyset import BEFORE, Position, calls_page, encode_cursor
from calls.models import Call
from calls.tenancy.models import Organization

BASE_TIME = timezone.now().replace(microsecond=0) - timedelta(days=30)


def bulk_calls(organization: Organization, rows: list[dict[str, Any]]) -> list[Call]:
    """Create many calls in one INSERT; each dict overrides the defaults."""
    calls = []
    for n, row in enumerate(rows):
        fields: dict[str, Any] = {
            "organization": organization,
            "title": f"Call {n}",
            "customer_name": f"Customer {n}",
            "customer_company": f"Company {n}",
            "started_at": BASE_TIME + timedelta(minutes=n),
            "duration_seconds": 60 + n,
            "status": Call.Status.COMPLETED,
            "score": 50,
            "sentiment": 0.0,
        } | row
        calls.append(Call(**fields))
    return Call.objects.bulk_create(calls)


def expected_order(calls: list[Call], sort: Sort) -> list[int]:
    """The dashboard's order, computed in Python: analysed calls by (value, id)
    in the sort's direction, then the unanalysed ones by id in that direction."""
    column = sort.column
    present = [c for c in calls if getattr(c, column) is not None]
    missing = [c for c in calls if getattr(c, column) is None]
    present.sort(key=lambda c: (getattr(c, column), c.pk), reverse=sort.descending)
    missing.sort(key=lambda c: c.pk, reverse=sort.descending)
    return [c.pk for c in present + missing]


def walk_forward(queryset, sort: Sort, size: int) -> list[int]:
    seen: list[int] = []
    cursor = ""
    for _ in range(10_000):
        page = calls_page(queryset, sort, size, cursor, strict=True)
        seen.extend(c.pk for c in page.rows)
        if page.next_cursor is None:
            return seen
        cursor = page.next_cursor
    raise AssertionError("the walk did not end")


def walk_backward(queryset, sort: Sort, size: int) -> list[int]:
    """From the end ("jump to last") back to the start, in display order."""
    page = calls_page(queryset, sort, size, encode_cursor(sort, Position(direction=BEFORE)), strict=True)
    seen = [c.pk for c in page.rows]
    for _ in range(10_000):
        if page.prev_cursor is None:
            return seen
        page = calls_page(queryset, sort, size, page.prev_cursor, strict=True)
        seen = [c.pk for c in page.rows] + seen
    raise AssertionError("the walk did not end")
