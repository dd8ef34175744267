"""What other apps listen to when calls change.

Saving or deleting one row fires Django's post_save/post_delete, which the
cache (tag invalidation) and analytics (rollups) receive. `QuerySet.update()`
and COPY-based seeding fire no per-row signals; `QuerySet.delete()` does fire
post_delete for every row, so a bulk delete runs inside `bulk_operation()`,
where those per-row receivers do nothing. Either way whoever performs a bulk
operation calls `announce_bulk_change()`; it sends `calls_bulk_changed` once
the transaction has committed, so a receiver never acts on data a reader
cannot see yet, and the whole change is handled once.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime

from django.db import transaction
from django.db.models import QuerySet
from django.dispatch import Signal

from calls.models import Call

# Sent with: organization_id (int), started_between ((datetime, datetime) or
# None when the affected range is unknown), call_ids (list[int] or None when
# the change was made by filter rather than by id).
calls_bulk_changed = Signal()

_in_bulk_operation: ContextVar[bool] = ContextVar("calls_in_bulk_operation", default=False)


@contextmanager
def bulk_operation() -> Iterator[None]:
    """Per-row signal receivers (cache, analytics) skip their work inside: the
    operation announces itself once with `announce_bulk_change()` instead."""
    token = _in_bulk_operation.set(True)
    try:
        yield
    finally:
        _in_bulk_operation.reset(token)


def in_bulk_operation() -> bool:
    return _in_bulk_operation.get()


def affected_range(queryset: QuerySet[Call]) -> tuple[datetime, datetime] | None:
    """The started_at range a bulk operation is about to touch: read it before
    the operation, because after a delete the rows are gone."""
    from django.db.models import Max, Min

    bounds = queryset.order_by().aggregate(first=Min("started_at"), last=Max("started_at"))
    if bounds["first"] is None:
        return None
    return bounds["first"], bounds["last"]


def announce_bulk_change(
    *,
    organization_id: int,
    started_between: tuple[datetime, datetime] | None,
    call_ids: list[int] | None = None,
) -> None:
    transaction.on_commit(
        lambda: calls_bulk_changed.send(
            sender=Call, organization_id=organization_id, started_between=started_between, call_ids=call_ids
        )
    )
