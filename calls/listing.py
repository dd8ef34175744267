"""The calls dashboard's listing: filters parsed from the query string, keyset
(cursor) pages, the number of matching calls, and each person's selection.

Pages are keyset pages on (sort column, id), never OFFSET, so page 10,000
costs what page 1 costs: every page is one index range scan that starts where
the cursor points. Cursors are opaque and signed (django.core.signing); a
tampered one is rejected, never trusted.

Calls not analysed yet have no score or sentiment. They always come after the
analysed ones, in either direction, ordered among themselves by id: the rows
query reads the non-null segment and then the null segment (one UNION ALL on
PostgreSQL, so still one query), each segment an index range scan of its own.

The total is exact up to EXACT_COUNT_LIMIT (a COUNT over at most that many
rows); beyond that it is PostgreSQL's planner estimate, and the page says so.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from django.core import signing
from django.db import connection, transaction
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    Exists,
    Expression,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.lookups import GreaterThan
from django.dispatch import Signal
from django.http import QueryDict
from django.utils import timezone
from django.utils.http import urlencode

from calls.models import Call, CallSelection, SearchContains, SelectionItem
from calls.tenancy.models import Organization
from resilience.db import keyset_chunks

SORT_COLUMNS: dict[str, str] = {
    "started": "started_at",
    "duration": "duration_seconds",
    "score": "score",
    "sentiment": "sentiment",
}
NULLABLE_SORTS = frozenset({"score", "sentiment"})
DEFAULT_SORT = "-started"
PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
MODES = ("pages", "scroll")
# Sentiment buckets: at or beyond ±0.25 a call reads as positive/negative.
SENTIMENT_THRESHOLD = 0.25
SENTIMENTS = ("positive", "neutral", "negative")
OUTCOME_UNKNOWN = "unknown"  # the URL's name for the empty outcome
SEARCH_MIN_LENGTH = 3  # a trigram index needs three characters to narrow anything down
EXACT_COUNT_LIMIT = 10_000
CURSOR_SALT = "calls.listing.cursor"


# --- Sorts and filters ------------------------------------------------------------


@dataclass(frozen=True)
class Sort:
    key: str = "started"
    descending: bool = True

    @classmethod
    def parse(cls, param: str) -> Sort:
        """`-score` → score, descending. Unknown keys raise ValueError."""
        key = param.removeprefix("-")
        if key not in SORT_COLUMNS:
            raise ValueError(param)
        return cls(key=key, descending=param.startswith("-"))

    @property
    def param(self) -> str:
        return f"-{self.key}" if self.descending else self.key

    @property
    def column(self) -> str:
        return SORT_COLUMNS[self.key]

    @property
    def nullable(self) -> bool:
        return self.key in NULLABLE_SORTS


@dataclass(frozen=True)
class CallFilters:
    """What narrows the table down. Parsed by calls.forms.CallListForm."""

    statuses: tuple[str, ...] = ()
    outcome: str | None = None  # an outcome value, or OUTCOME_UNKNOWN
    rep: int | None = None
    started_from: date | None = None
    started_to: date | None = None  # inclusive
    score_min: int | None = None
    score_max: int | None = None
    sentiment: str | None = None
    q: str = ""

    def to_q(self) -> Q:
        q = Q()
        if self.statuses:
            q &= Q(status__in=self.statuses)
        if self.outcome is not None:
            q &= Q(outcome="" if self.outcome == OUTCOME_UNKNOWN else self.outcome)
        if self.rep is not None:
            q &= Q(rep_id=self.rep)
        if self.started_from is not None:
            q &= Q(started_at__gte=local_midnight(self.started_from))
        if self.started_to is not None:
            q &= Q(started_at__lt=local_midnight(self.started_to + timedelta(days=1)))
        if self.score_min is not None:
            q &= Q(score__gte=self.score_min)
        if self.score_max is not None:
            q &= Q(score__lte=self.score_max)
        if self.sentiment == "positive":
            q &= Q(sentiment__gte=SENTIMENT_THRESHOLD)
        elif self.sentiment == "negative":
            q &= Q(sentiment__lte=-SENTIMENT_THRESHOLD)
        elif self.sentiment == "neutral":
            q &= Q(sentiment__gt=-SENTIMENT_THRESHOLD, sentiment__lt=SENTIMENT_THRESHOLD)
        if self.q:
            q &= Q(SearchContains(self.q))
        return q

    def params(self) -> list[tuple[str, str]]:
        """The filter as query-string pairs, in a fixed order (so equal filters give equal strings)."""
        pairs = [("status", status) for status in sorted(self.statuses)]
        for name in ("outcome", "rep", "started_from", "started_to", "score_min", "score_max", "sentiment", "q"):
            value = getattr(self, name)
            if value is not None and value != "":
                pairs.append((name, value.isoformat() if isinstance(value, date) else str(value)))
        return pairs

    @property
    def querystring(self) -> str:
        return urlencode(self.params())

    @property
    def is_active(self) -> bool:
        return bool(self.params())


def local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass(frozen=True)
class Listing:
    """Everything a table request asks for; all of it lives in the URL."""

    filters: CallFilters = field(default_factory=CallFilters)
    sort: Sort = field(default_factory=Sort)
    size: int = DEFAULT_PAGE_SIZE
    mode: str = "pages"
    cursor: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """Query-string pairs of this view state; `changes` override sort/size/mode/cursor.
        Defaults are left out so URLs stay short."""
        state = replace(self, **changes) if changes else self
        pairs = state.filters.params()
        if state.sort.param != DEFAULT_SORT:
            pairs.append(("sort", state.sort.param))
        if state.size != DEFAULT_PAGE_SIZE:
            pairs.append(("size", str(state.size)))
        if state.mode != "pages":
            pairs.append(("mode", state.mode))
        if state.cursor:
            pairs.append(("cursor", state.cursor))
        return pairs

    def url(self, path: str, **changes: Any) -> str:
        query = urlencode(self.params(**changes))
        return f"{path}?{query}" if query else path


def parse_listing(query: QueryDict) -> Listing:
    """The view state from a query string. Invalid values are left out of the
    state and reported in `errors` (field → messages), never raised."""
    from calls.forms import CallListForm

    form = CallListForm(query)
    form.is_valid()
    data = form.cleaned_data
    filters = CallFilters(
        statuses=tuple(data.get("status") or ()),
        outcome=data.get("outcome") or None,
        rep=data.get("rep"),
        started_from=data.get("started_from"),
        started_to=data.get("started_to"),
        score_min=data.get("score_min"),
        score_max=data.get("score_max"),
        sentiment=data.get("sentiment") or None,
        q=data.get("q") or "",
    )
    return Listing(
        filters=filters,
        sort=Sort.parse(data.get("sort") or DEFAULT_SORT),
        size=data.get("size") or DEFAULT_PAGE_SIZE,
        mode=data.get("mode") or "pages",
        cursor=query.get("cursor", "").strip(),
        errors={name: list(messages) for name, messages in form.errors.items()},
    )


def filters_from_querystring(querystring: str) -> CallFilters:
    return parse_listing(QueryDict(querystring)).filters


# --- Cursors ------------------------------------------------------------------------

AFTER, BEFORE = "a", "b"


class InvalidCursor(ValueError):
    """A cursor that was tampered with, or made for another sort."""


@dataclass(frozen=True)
class Position:
    """A place between two rows: after (or before) the row (value, id). A BEFORE
    position with id None is the end of the list ("jump to last")."""

    direction: Literal["a", "b"]
    value: Any = None
    call_id: int | None = None

    @property
    def is_end(self) -> bool:
        return self.call_id is None


def encode_cursor(sort: Sort, position: Position) -> str:
    value = position.value
    if isinstance(value, datetime):
        value = value.isoformat()
    payload = {"s": sort.param, "d": position.direction, "v": value, "i": position.call_id}
    return signing.dumps(payload, salt=CURSOR_SALT, compress=True)


def decode_cursor(token: str, sort: Sort) -> Position:
    try:
        payload = signing.loads(token, salt=CURSOR_SALT)
    except signing.BadSignature as exc:
        raise InvalidCursor("This page link is not valid (it may have been altered).") from exc
    if not isinstance(payload, dict) or payload.get("s") != sort.param:
        raise InvalidCursor("This page link belongs to another sort order.")
    direction, value, call_id = payload.get("d"), payload.get("v"), payload.get("i")
    # Signed by us, so well-formed; still checked so a key rotation or an
    # older format cannot turn into a 500.
    if direction not in (AFTER, BEFORE) or not (call_id is None or isinstance(call_id, int)):
        raise InvalidCursor("This page link is not valid.")
    if value is not None:
        try:
            value = {
                "started": lambda v: datetime.fromisoformat(v),
                "duration": int,
                "score": int,
                "sentiment": float,
            }[sort.key](value)
        except (TypeError, ValueError) as exc:
            raise InvalidCursor("This page link is not valid.") from exc
    elif not sort.nullable and call_id is not None:
        raise InvalidCursor("This page link is not valid.")
    return Position(direction=direction, value=value, call_id=call_id)


def position_of(call: Call, sort: Sort, direction: Literal["a", "b"]) -> Position:
    return Position(direction=direction, value=getattr(call, sort.column), call_id=call.pk)


# --- Keyset pages ------------------------------------------------------------------


class RowComparison(Expression):
    """`(a, b) < (x, y)`: a row-value comparison, which PostgreSQL turns into an
    index range condition on (organization, a, b). The equivalent
    `a < x OR (a = x AND b < y)` is only a filter, and makes deep pages scan."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, columns: tuple[str, ...], operator: str, values: tuple[Any, ...]) -> None:
        super().__init__()
        if operator not in ("<", ">"):
            raise ValueError(operator)
        self.operator = operator
        self.lhs = [F(column) for column in columns]
        self.rhs = [v if isinstance(v, Expression) else Value(v) for v in values]

    def get_source_expressions(self) -> list[Any]:
        return [*self.lhs, *self.rhs]

    def set_source_expressions(self, exprs: list[Any]) -> None:
        n = len(self.lhs)
        self.lhs, self.rhs = list(exprs[:n]), list(exprs[n:])

    def resolve_expression(self, *args: Any, **kwargs: Any) -> RowComparison:
        resolved = super().resolve_expression(*args, **kwargs)
        # Give each value its column's type, so datetimes are adapted as datetimes.
        resolved.rhs = [
            Value(v.value, output_field=col.output_field) if isinstance(v, Value) else v
            for col, v in zip(resolved.lhs, resolved.rhs, strict=True)
        ]
        return resolved

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        def compile_all(exprs: list[Any]) -> tuple[str, list[Any]]:
            parts, params = [], []
            for expr in exprs:
                sql, expr_params = compiler.compile(expr)
                parts.append(sql)
                params.extend(expr_params)
            return ", ".join(parts), params

        lhs_sql, lhs_params = compile_all(self.lhs)
        rhs_sql, rhs_params = compile_all(self.rhs)
        return f"(({lhs_sql}) {self.operator} ({rhs_sql}))", [*lhs_params, *rhs_params]


def keyset_rows(queryset: QuerySet[Call], sort: Sort, position: Position | None, limit: int) -> list[Call]:
    """Up to `limit` rows from `position` on, in the order they are walked: the
    display order, or its reverse for a BEFORE position. One query."""
    backward = position is not None and position.direction == BEFORE
    descending = sort.descending != backward
    column = sort.column
    operator = "<" if descending else ">"
    order = [F(column).desc(), F("id").desc()] if descending else [F(column).asc(), F("id").asc()]
    after_row = (
        None
        if position is None or position.is_end
        else RowComparison((column, "id"), operator, (position.value, position.call_id))
    )
    if not sort.nullable:
        rows = queryset.filter(after_row) if after_row is not None else queryset
        return list(rows.order_by(*order)[:limit])

    present = queryset.filter(**{f"{column}__isnull": False}).order_by(*order)
    missing = queryset.filter(**{f"{column}__isnull": True}).order_by("-id" if descending else "id")
    if position is None or position.is_end:
        segments = [present, missing] if not backward else [missing, present]
    elif position.value is None:
        within_missing = missing.filter(RowComparison(("id",), operator, (position.call_id,)))
        segments = [within_missing] if not backward else [within_missing, present]
    else:
        within_present = present.filter(after_row)
        segments = [within_present, missing] if not backward else [within_present]
    return fetch_segments(segments, order, limit)


def fetch_segments(segments: list[QuerySet[Call]], order: list[Any], limit: int) -> list[Call]:
    if len(segments) == 1:
        return list(segments[0][:limit])
    if connection.features.supports_slicing_ordering_in_compound:
        # One round trip: (segment 0 LIMIT n) UNION ALL (segment 1 LIMIT n),
        # re-ordered by segment then the sort: at most 2n rows to sort. The
        # second segment is read only when the first came up short: its
        # condition is an uncorrelated subquery (PostgreSQL's InitPlan: evaluated once, first,
        # and skips the scan when it is false), because a filter that matches
        # no unanalysed call would otherwise scan them all on every page.
        first, second = segments
        second = second.alias(earlier_rows=SubqueryCount(first.values("pk")[:limit])).filter(earlier_rows__lt=limit)
        parts = [
            qs.annotate(segment=Value(i, output_field=IntegerField()))[:limit] for i, qs in enumerate([first, second])
        ]
        union = parts[0].union(*parts[1:], all=True)
        return list(union.order_by("segment", *order)[:limit])
    rows: list[Call] = []
    for qs in segments:
        rows.extend(qs[: limit - len(rows)])
        if len(rows) >= limit:
            break
    return rows


@dataclass
class CallPage:
    rows: list[Call]
    sort: Sort
    size: int
    next_cursor: str | None = None
    prev_cursor: str | None = None
    has_next: bool = False
    has_prev: bool = False
    notice: str = ""

    @property
    def last_cursor(self) -> str:
        return encode_cursor(self.sort, Position(direction=BEFORE))


def calls_page(queryset: QuerySet[Call], sort: Sort, size: int, cursor: str = "", *, strict: bool = False) -> CallPage:
    """One keyset page. A bad cursor gives the first page with a notice, or
    raises InvalidCursor when `strict` (the API answers 400)."""
    position, notice = None, ""
    if cursor:
        try:
            position = decode_cursor(cursor, sort)
        except InvalidCursor as exc:
            if strict:
                raise
            notice = f"{exc} Showing the first page instead."
    rows = keyset_rows(queryset, sort, position, size + 1)
    more = len(rows) > size
    rows = rows[:size]
    if position is not None and position.direction == BEFORE:
        rows.reverse()
        has_prev, has_next = more, not position.is_end
    else:
        has_prev, has_next = position is not None, more
    page = CallPage(rows=rows, sort=sort, size=size, has_next=has_next, has_prev=has_prev, notice=notice)
    if rows:
        page.next_cursor = encode_cursor(sort, position_of(rows[-1], sort, AFTER)) if has_next else None
        page.prev_cursor = encode_cursor(sort, position_of(rows[0], sort, BEFORE)) if has_prev else None
    elif position is not None and position.direction == AFTER:
        # Nothing after the cursor any more (rows deleted): the way back is the last page.
        page.prev_cursor, page.has_prev = encode_cursor(sort, Position(direction=BEFORE)), True
    else:
        # Nothing before a BEFORE cursor: the first page ("newest") is the way on.
        page.has_prev = page.has_next = False
    return page


# --- Totals and selection state: one query ------------------------------------------


class SubqueryCount(Subquery):
    template = "(SELECT COUNT(*) FROM (%(subquery)s) _counted)"
    output_field = IntegerField()


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


# --- CSV export ---------------------------------------------------------------------------

CSV_FIELDS = (
    "id",
    "started_at",
    "title",
    "customer_name",
    "customer_company",
    "rep__first_name",
    "rep__last_name",
    "direction",
    "duration_seconds",
    "status",
    "outcome",
    "score",
    "sentiment",
    "talk_ratio",
)
CSV_HEADER = (
    "id",
    "started_at",
    "title",
    "customer_name",
    "customer_company",
    "rep",
    "direction",
    "duration_seconds",
    "status",
    "outcome",
    "score",
    "sentiment",
    "talk_ratio",
)
CSV_CHUNK_ROWS = 2000


class _Echo:
    """csv.writer wants a file; this one hands each line back."""

    def write(self, value: str) -> str:
        return value


def csv_safe(value: object) -> object:
    # A cell starting with = + - @ is a formula to spreadsheet apps; customer
    # names are typed by people, so neutralise it (OWASP "CSV injection").
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export_csv_lines(calls: QuerySet[Call]) -> Iterator[str]:
    """The CSV of `calls`, newest first, produced lazily: rows come in keyset
    chunks of CSV_CHUNK_ROWS (no server-side cursor, so it streams behind
    PgBouncer too), and memory stays flat whether it is ten calls or a million."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    rows = keyset_chunks(calls, fields=CSV_FIELDS, order=("-started_at", "-id"), chunk_size=CSV_CHUNK_ROWS)
    batch: list[str] = []
    for pk, started, title, name, company, first, last, *rest in rows:
        rep = f"{first or ''} {last or ''}".strip()
        line = [pk, timezone.localtime(started).isoformat(), title, name, company, rep, *rest]
        batch.append(writer.writerow([csv_safe(v) for v in line]))
        if len(batch) >= 500:
            yield "".join(batch)
            batch = []
    if batch:
        yield "".join(batch)
