"""Keeping the rollups current as calls change (connected in AnalyticsConfig.ready).

Per-row changes recompute the affected local days inside the same
transaction, under the organization's lock, so the rollups commit together
with the call and anything invalidated on commit (the cache) never sees old
rollups. Bulk changes arrive after commit through `calls_bulk_changed` and
recompute the announced range (or the whole organization when it is unknown).
The periodic `repair_rollups` task catches anything that slipped past both,
such as raw SQL that announced nothing.
"""

from __future__ import annotations

import threading
from datetime import date, datetime

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from analytics.rollups import analyze_rollups, local_day, rebuild_places, rebuild_rollups
from calls.events import calls_bulk_changed, in_bulk_operation
from calls.models import Call, CallAnalysis
from calls.tenancy.models import Organization

# A save that touches none of these leaves every analytics figure unchanged.
ANALYTIC_FIELDS = frozenset(
    {"organization", "rep", "started_at", "duration_seconds", "status", "outcome", "score", "sentiment", "talk_ratio"}
)

# Organizations being deleted: their calls' post_delete must not write rollups
# that the cascade already collected (they would outlive the organization).
# Each is marked with the deletion's transaction block (Django's Collector runs
# pre_delete inside its own atomic block): a delete that fails between
# pre_delete and post_delete leaves that block, and the stale mark is ignored
# and dropped, so the organization's rollups are not skipped for good.
_deleting = threading.local()


def _marks() -> dict[int, object]:
    if not hasattr(_deleting, "marks"):
        _deleting.marks = {}
    return _deleting.marks


def _organizations_being_deleted() -> set[int]:
    open_blocks = transaction.get_connection().atomic_blocks
    marks = _marks()
    for organization_id, block in list(marks.items()):
        if not any(open_block is block for open_block in open_blocks):
            del marks[organization_id]
    return set(marks)


def _touches_analytics(update_fields: frozenset[str] | None) -> bool:
    return update_fields is None or bool(ANALYTIC_FIELDS & {f.removesuffix("_id") for f in update_fields})


@receiver(pre_save, sender=Call, dispatch_uid="analytics_call_pre_save")
def remember_previous_day(
    sender: type[Call], instance: Call, raw: bool, update_fields: frozenset | None, **kwargs: object
) -> None:
    """A save can move a call to another day or organization: remember where it was."""
    instance._analytics_previous = None
    if raw or instance.pk is None or not _touches_analytics(update_fields):
        return
    instance._analytics_previous = (
        Call.objects.filter(pk=instance.pk).values_list("organization_id", "started_at", "rep_id").first()
    )


Place = tuple[int, date, int | None]  # organization, local day, rep (None: unassigned)


def _recompute(places: set[Place]) -> None:
    by_org: dict[int, set[tuple[date, int | None]]] = {}
    for organization_id, day, rep_id in places:
        if organization_id not in _organizations_being_deleted():
            by_org.setdefault(organization_id, set()).add((day, rep_id))
    for organization_id in sorted(by_org):
        rebuild_places(organization_id, by_org[organization_id])


@receiver(post_save, sender=Call, dispatch_uid="analytics_call_post_save")
def call_saved(
    sender: type[Call], instance: Call, raw: bool, update_fields: frozenset | None, **kwargs: object
) -> None:
    if raw or not _touches_analytics(update_fields):
        return
    places = {(instance.organization_id, local_day(instance.started_at), instance.rep_id)}
    previous = getattr(instance, "_analytics_previous", None)
    if previous is not None:
        places.add((previous[0], local_day(previous[1]), previous[2]))
    _recompute(places)


@receiver(post_delete, sender=Call, dispatch_uid="analytics_call_post_delete")
def call_deleted(sender: type[Call], instance: Call, **kwargs: object) -> None:
    if in_bulk_operation():
        return  # the bulk delete announces itself; calls_changed_in_bulk rebuilds once
    _recompute({(instance.organization_id, local_day(instance.started_at), instance.rep_id)})


@receiver(post_save, sender=CallAnalysis, dispatch_uid="analytics_analysis_post_save")
@receiver(post_delete, sender=CallAnalysis, dispatch_uid="analytics_analysis_post_delete")
def analysis_changed(sender: type[CallAnalysis], instance: CallAnalysis, raw: bool = False, **kwargs: object) -> None:
    """Topics come from the analysis: recompute its call's day."""
    if raw or in_bulk_operation():
        return
    call = Call.objects.filter(pk=instance.call_id).values_list("organization_id", "started_at", "rep_id").first()
    if call is not None:
        _recompute({(call[0], local_day(call[1]), call[2])})


@receiver(pre_delete, sender=Organization, dispatch_uid="analytics_org_pre_delete")
def organization_deleting(sender: type[Organization], instance: Organization, **kwargs: object) -> None:
    open_blocks = transaction.get_connection().atomic_blocks
    if open_blocks:
        _marks()[instance.pk] = open_blocks[-1]


@receiver(post_delete, sender=Organization, dispatch_uid="analytics_org_post_delete")
def organization_deleted(sender: type[Organization], instance: Organization, **kwargs: object) -> None:
    _marks().pop(instance.pk, None)


@receiver(calls_bulk_changed, dispatch_uid="analytics_calls_bulk_changed")
def calls_changed_in_bulk(
    sender: type[Call],
    organization_id: int,
    started_between: tuple[datetime, datetime] | None,
    call_ids: list[int] | None = None,
    **kwargs: object,
) -> None:
    """Sent after commit. The announced range is where the calls were before
    the change; calls named by id are also looked up where they are now, so
    a bulk move to other days is recomputed on both sides."""
    if started_between is None:
        rebuild_rollups(organization_id)
        analyze_rollups()
        return
    first, last = local_day(started_between[0]), local_day(started_between[1])
    if call_ids:
        from django.db.models import Max, Min

        now = Call.objects.filter(pk__in=call_ids).aggregate(first=Min("started_at"), last=Max("started_at"))
        if now["first"] is not None:
            first, last = min(first, local_day(now["first"])), max(last, local_day(now["last"]))
    rebuild_rollups(organization_id, first, last)
