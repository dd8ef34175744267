"""Keyset (cursor) pages of calls: signed cursors, the row-value comparison
that makes a deep page an index range scan, and one page of rows.

Pages are keyset pages on (sort column, id), never OFFSET, so page 10,000
costs what page 1 costs: every page is one index range scan that starts where
the cursor points. Cursors are opaque and signed (django.core.signing); a
tampered one is rejected, never trusted.

Calls not analysed yet have no score or sentiment. They always come after the
analysed ones, in either direction, ordered among themselves by id: the rows
query reads the non-null segment and then the null segment (one UNION ALL on
PostgreSQL, so still one query), each segment an index range scan of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from django.core import signing
from django.db import connection
from django.db.models import BooleanField, Expression, F, IntegerField, QuerySet, Subquery, Value

from calls.filters import Sort
from calls.models import Call

# Kept from when this lived in calls/listing.py: changing the salt would void every cursor in circulation.
CURSOR_SALT = "calls.listing.cursor"

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
    # Ordered by (column, id) although the column is NULL throughout: the same
    # order as by id alone, but spelled as the (organization, [filter,] column,
    # id) indexes store it, so the planner reads the NULL range of one of them.
    # Ordered by id alone it may walk the primary key instead, betting that
    # matching rows come early, and read every call when none match (a
    # status=completed or outcome=won filter has no unscored calls at all).
    missing = queryset.filter(**{f"{column}__isnull": True}).order_by(*order)
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


class SubqueryCount(Subquery):
    """COUNT(*) over a (sliced) subquery: counts at most the slice's rows."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) _counted)"
    output_field = IntegerField()


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
