"""Bulk actions on a person's selection of calls: set the outcome, delete.

Who may change which call (README, "Who may do what"): managers and admins
any call of their organization, a rep only the calls where they are the rep.
The rule is applied here, to the queryset the action runs on, so a rep's
"select all" over colleagues' calls changes only the rep's own; the result
says how many selected calls were left alone.

Each function owns its state change and its side effects: a bulk update
fires no per-row signals, and a bulk delete runs inside
calls.events.bulk_operation() so the per-row post_delete receivers skip their
work; each announces the change once (calls.events.announce_bulk_change) for
the cache and analytics, on commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from calls.events import affected_range, announce_bulk_change, bulk_operation
from calls.models import Call, CallAnalysis, Transcript
from calls.selection import clear_selection, selected_calls
from calls.tenancy.models import Membership
from calls.webhooks.events import emit_outcome_changes

DELETE_CHUNK = 1000
# Up to this many ids are named in the announcement; beyond, receivers get the date range only.
ANNOUNCE_IDS_LIMIT = 5000


@dataclass(frozen=True)
class BulkResult:
    changed: int
    # Selected calls this person may not change (a rep's colleagues' calls), left as they were.
    not_permitted: int = 0


def changeable_calls(membership: Membership, calls: QuerySet[Call]) -> QuerySet[Call]:
    """The part of `calls` this member may change (set outcome, delete)."""
    if membership.can_manage:
        return calls
    return calls.filter(rep_id=membership.user_id)


def split_selection(membership: Membership) -> tuple[QuerySet[Call], int]:
    """The selected calls this member may change, and how many others are selected."""
    selected = selected_calls(membership.organization, membership.user)
    if membership.can_manage:
        return selected, 0
    return changeable_calls(membership, selected), selected.exclude(rep_id=membership.user_id).count()


def set_selection_outcome(membership: Membership, outcome: str) -> BulkResult:
    """Set `outcome` on every selected call the member may change, in one UPDATE."""
    if outcome not in Call.Outcome.values:
        raise ValueError(f"Unknown outcome {outcome!r}")
    organization = membership.organization
    calls, not_permitted = split_selection(membership)
    with transaction.atomic():
        span = affected_range(calls)
        ids = list(calls.values_list("pk", flat=True)[: ANNOUNCE_IDS_LIMIT + 1])
        # Before the UPDATE: the event names each call's previous outcome.
        emit_outcome_changes(organization, calls, outcome)
        changed = calls.update(outcome=outcome, updated_at=timezone.now())
        if changed:
            announce_bulk_change(
                organization_id=organization.pk,
                started_between=span,
                call_ids=ids if len(ids) <= ANNOUNCE_IDS_LIMIT else None,
            )
    return BulkResult(changed=changed, not_permitted=not_permitted)


def delete_selection(membership: Membership) -> BulkResult:
    """Delete every selected call the member may change, DELETE_CHUNK at a time
    (each chunk its own transaction, so a million-call delete never holds one
    huge lock or loads a million objects), then clear the selection."""
    organization = membership.organization
    calls, not_permitted = split_selection(membership)
    span = affected_range(calls)
    deleted = 0
    while True:
        with transaction.atomic():
            chunk = list(calls.order_by("pk").values_list("pk", flat=True)[:DELETE_CHUNK])
            if not chunk:
                break
            with bulk_operation():
                # The call's parts first, explicitly: the cascade then finds none.
                Transcript.objects.filter(call_id__in=chunk).delete()
                CallAnalysis.objects.filter(call_id__in=chunk).delete()
                Call.objects.for_org(organization).filter(pk__in=chunk).delete()
            announce_bulk_change(organization_id=organization.pk, started_between=span, call_ids=chunk)
            deleted += len(chunk)
    clear_selection(organization, membership.user)
    return BulkResult(changed=deleted, not_permitted=not_permitted)
