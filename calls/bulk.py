"""Bulk actions on a person's selection of calls: set the outcome, delete.

Each function owns its state change and its side effects: bulk updates and
deletes fire no per-row signals, so each announces the change
(calls.events.announce_bulk_change) for the cache and analytics, on commit.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils import timezone

from calls.events import affected_range, announce_bulk_change
from calls.models import Call
from calls.selection import clear_selection, selected_calls
from calls.tenancy.models import Organization

DELETE_CHUNK = 1000
# Up to this many ids are named in the announcement; beyond, receivers get the date range only.
ANNOUNCE_IDS_LIMIT = 5000


def set_selection_outcome(organization: Organization, user: Any, outcome: str) -> int:
    """Set `outcome` on every selected call in one UPDATE; returns how many changed."""
    if outcome not in Call.Outcome.values:
        raise ValueError(f"Unknown outcome {outcome!r}")
    calls = selected_calls(organization, user)
    with transaction.atomic():
        span = affected_range(calls)
        ids = list(calls.values_list("pk", flat=True)[: ANNOUNCE_IDS_LIMIT + 1])
        changed = calls.update(outcome=outcome, updated_at=timezone.now())
        if changed:
            announce_bulk_change(
                organization_id=organization.pk,
                started_between=span,
                call_ids=ids if len(ids) <= ANNOUNCE_IDS_LIMIT else None,
            )
    return changed


def delete_selection(organization: Organization, user: Any) -> int:
    """Delete every selected call, DELETE_CHUNK at a time (each chunk its own
    transaction, so a million-call delete never holds one huge lock or loads a
    million objects), then clear the selection. Returns how many were deleted."""
    calls = selected_calls(organization, user)
    span = affected_range(calls)
    deleted = 0
    while True:
        with transaction.atomic():
            chunk = list(calls.order_by("pk").values_list("pk", flat=True)[:DELETE_CHUNK])
            if not chunk:
                break
            Call.objects.for_org(organization).filter(pk__in=chunk).delete()
            announce_bulk_change(organization_id=organization.pk, started_between=span, call_ids=chunk)
            deleted += len(chunk)
    clear_selection(organization, user)
    return deleted
