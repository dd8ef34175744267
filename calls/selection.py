"""Each person's selection of calls, and the dashboard table that shows it.

The selection is kept server-side per person and organization: explicit (its
items are the ticked calls) or "all matching" a stored filter (its items are
then the calls unticked since), so selecting a million calls stores one row.

The table's summary (the selection state and the number of matching calls) is
one query; the rows are a keyset page (calls.keyset). The total is exact up to
EXACT_COUNT_LIMIT (a COUNT over at most that many rows); beyond that it is
PostgreSQL's planner estimate, and the page says so.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    Exists,
    Func,
    IntegerField,
    OuterRef,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.lookups import GreaterThan
from django.dispatch import Signal

from calls.filters import CallFilters, Listing
from calls.forms import filters_from_querystring
from calls.keyset import CallPage, SubqueryCount, calls_page
from calls.models import Call, CallSelection, SelectionItem
from calls.tenancy.models import Organization

EXACT_COUNT_LIMIT = 10_000


class CountEstimate(Func):
    """PostgreSQL's planner estimate of a query's rows (function created by migration 0002)."""

    function = "calliq_count_estimate"
    output_field = BigIntegerField()


@dataclass(frozen=True)
class Total:
    value: int
    exact: bool


@dataclass(frozen=True)
class SelectionState:
    selection_id: int | None = None
    all_matching: bool = False
    filter_query: str = ""
    matching_count: int | None = None
    matching_estimated: bool = False
    items: int = 0

    @property
    def count(self) -> int:
        if self.all_matching:
            return max((self.matching_count or 0) - self.items, 0)
        return self.items

    @property
    def is_empty(self) -> bool:
        return self.selection_id is None or (not self.all_matching and self.items == 0)

    @property
    def stored_filters(self) -> CallFilters:
        return filters_from_querystring(self.filter_query)


def table_summary(
    organization: Organization, user: Any, matching: QuerySet[Call] | None
) -> tuple[SelectionState, Total | None]:
    """The person's selection state and, when `matching` is given, its total:
    one query on PostgreSQL. The total counts at most EXACT_COUNT_LIMIT + 1 rows;
    past that it is the planner's estimate."""
    selection = CallSelection.objects.filter(user=user, organization=organization)
    annotations: dict[str, Any] = {
        "sel_id": Subquery(selection.values("pk")[:1]),
        "sel_all": Subquery(selection.values("all_matching")[:1]),
        "sel_query": Subquery(selection.values("filter_query")[:1]),
        "sel_count": Subquery(selection.values("matching_count")[:1]),
        "sel_estimated": Subquery(selection.values("matching_estimated")[:1]),
        "sel_items": SubqueryCount(
            SelectionItem.objects.filter(selection__user=user, selection__organization=organization).values("pk")
        ),
    }
    postgres = connection.vendor == "postgresql"
    if matching is not None:
        ids = matching.order_by().values("pk")
        capped = SubqueryCount(ids[: EXACT_COUNT_LIMIT + 1])
        annotations["capped"] = capped
        if postgres:
            sql, params = ids.query.sql_with_params()
            estimate = CountEstimate(Value(connection.ops.compose_sql(sql, params)))
            annotations["estimate"] = estimate
            # Count only when the planner expects few matches: counting even
            # 10,000 rows of a search means building the index's whole bitmap first.
            annotations["capped"] = Case(
                When(GreaterThan(estimate, EXACT_COUNT_LIMIT), then=Value(None)),
                default=capped,
                output_field=IntegerField(),
            )
    row = Organization.objects.filter(pk=organization.pk).order_by().annotate(**annotations).values(*annotations)[0]
    state = SelectionState(
        selection_id=row["sel_id"],
        all_matching=bool(row["sel_all"]),
        filter_query=row["sel_query"] or "",
        matching_count=row["sel_count"],
        matching_estimated=bool(row["sel_estimated"]),
        items=row["sel_items"],
    )
    if matching is None:
        return state, None
    if row["capped"] is not None and row["capped"] <= EXACT_COUNT_LIMIT:
        return state, Total(row["capped"], exact=True)
    if postgres:
        return state, Total(max(row["estimate"], EXACT_COUNT_LIMIT + 1), exact=False)
    # No planner estimate on SQLite, which only serves small installs: count.
    return state, Total(matching.order_by().count(), exact=True)


def with_selection_flag(queryset: QuerySet[Call], state: SelectionState) -> QuerySet[Call]:
    """Annotate `is_selected` on each row, in the rows query itself."""
    if state.selection_id is None:
        return queryset.annotate(
            is_selected=Value(False, output_field=BooleanField()), selectable=Value(True, output_field=BooleanField())
        )
    listed = Exists(SelectionItem.objects.filter(selection_id=state.selection_id, call_id=OuterRef("pk")))
    if not state.all_matching:
        return queryset.annotate(is_selected=listed, selectable=Value(True, output_field=BooleanField()))
    # "All matching" stores a filter: a call outside it cannot be ticked on its own.
    in_filter = state.stored_filters.to_q()
    return queryset.annotate(
        is_selected=Case(
            When(in_filter & ~listed, then=Value(True)), default=Value(False), output_field=BooleanField()
        ),
        selectable=Case(When(in_filter, then=Value(True)), default=Value(False), output_field=BooleanField()),
    )


@dataclass
class TablePage:
    listing: Listing
    page: CallPage
    selection: SelectionState
    total: Total | None


def table_page(organization: Organization, user: Any, listing: Listing, *, with_total: bool = True) -> TablePage:
    """What the dashboard table shows: two queries (summary, rows)."""
    matching = Call.objects.for_org(organization).filtered(listing.filters)
    selection, total = table_summary(organization, user, matching if with_total else None)
    rows = with_selection_flag(matching.for_table(), selection)
    page = calls_page(rows, listing.sort, listing.size, listing.cursor)
    return TablePage(listing=listing, page=page, selection=selection, total=total)


# --- Selection changes -----------------------------------------------------------------

# Sent on commit with user_id and organization_id whenever a person's selection
# changes: the table shows it (checkboxes, the selection bar), so a cache of the
# table must drop that person's entries. Calls' own changes come from calls.events.
selection_changed = Signal()


def announce_selection_change(organization: Organization, user: Any) -> None:
    organization_id, user_id = organization.pk, user.pk
    transaction.on_commit(
        lambda: selection_changed.send(sender=CallSelection, organization_id=organization_id, user_id=user_id)
    )


def selected_calls(organization: Organization, user: Any) -> QuerySet[Call]:
    """The calls in this person's selection, always within the organization."""
    calls = Call.objects.for_org(organization)
    selection = CallSelection.objects.filter(user=user, organization=organization).first()
    if selection is None:
        return calls.none()
    items = SelectionItem.objects.filter(selection=selection).values("call_id")
    if selection.all_matching:
        return calls.filtered(filters_from_querystring(selection.filter_query)).exclude(pk__in=items)
    return calls.filter(pk__in=items)


def set_calls_selected(organization: Organization, user: Any, call_ids: Iterable[int], *, selected: bool) -> None:
    """Tick (or untick) calls. Ids outside the organization are ignored."""
    ids = list(Call.objects.for_org(organization).filter(pk__in=list(call_ids)).values_list("pk", flat=True))
    if not ids:
        return
    selection, _ = CallSelection.objects.get_or_create(user=user, organization=organization)
    # In "all matching" mode the items are exclusions, so ticking removes one.
    add = selected != selection.all_matching
    if add:
        SelectionItem.objects.bulk_create(
            [SelectionItem(selection=selection, call_id=pk) for pk in ids], ignore_conflicts=True
        )
    else:
        SelectionItem.objects.filter(selection=selection, call_id__in=ids).delete()
    selection.save(update_fields=["updated_at"])
    announce_selection_change(organization, user)


def select_all_matching(organization: Organization, user: Any, filters: CallFilters, total: Total) -> None:
    """Select every call matching `filters` by storing the filter, not the ids."""
    selection, _ = CallSelection.objects.update_or_create(
        user=user,
        organization=organization,
        defaults={
            "all_matching": True,
            "filter_query": filters.querystring,
            "matching_count": total.value,
            "matching_estimated": not total.exact,
        },
    )
    selection.items.all().delete()
    announce_selection_change(organization, user)


def clear_selection(organization: Organization, user: Any) -> None:
    CallSelection.objects.filter(user=user, organization=organization).delete()
    announce_selection_change(organization, user)


def matching_total(organization: Organization, user: Any, filters: CallFilters) -> Total:
    matching = Call.objects.for_org(organization).filtered(filters)
    return table_summary(organization, user, matching)[1]
