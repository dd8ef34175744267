"""Reading many rows without a server-side cursor.

Behind PgBouncer in transaction pooling mode (CALLIQ_DB_PGBOUNCER=1) Django
sets DISABLE_SERVER_SIDE_CURSORS, and `.iterator(chunk_size=…)` then fetches
every row into memory before the first one is handed back. keyset_chunks pages
through a queryset instead: each chunk is its own short query that starts where
the last one stopped, on (column, tiebreaker), so memory stays flat, no
transaction stays open between chunks (any pooled server connection can serve
the next one), and every chunk is an index range scan when an index on
(…filters, column, tiebreaker) exists.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from django.db.models import Q, QuerySet


def keyset_chunks(
    queryset: QuerySet, *, fields: Sequence[str], order: tuple[str, str], chunk_size: int
) -> Iterator[tuple[Any, ...]]:
    """Rows of `queryset.values_list(*fields)` in `order`, `chunk_size` per query.

    `order` is a non-null column and a unique tiebreaker, both with the same
    direction ("-started_at", "-id"); both must be among `fields`.
    """
    column, tiebreaker = (name.lstrip("-") for name in order)
    descending = order[0].startswith("-")
    if descending != order[1].startswith("-"):
        raise ValueError("keyset_chunks needs both order columns in the same direction")
    at_column, at_tiebreaker = fields.index(column), fields.index(tiebreaker)
    beyond = "lt" if descending else "gt"
    base = queryset.order_by(*order).values_list(*fields)
    last: tuple[Any, ...] | None = None
    while True:
        chunk = base
        if last is not None:
            value, tie = last[at_column], last[at_tiebreaker]
            # The range condition on the column alone is what an index scan can start from;
            # the OR then drops the rows of the boundary value that were already read.
            chunk = base.filter(
                Q(**{f"{column}__{beyond}e": value}),
                Q(**{f"{column}__{beyond}": value}) | Q(**{f"{tiebreaker}__{beyond}": tie}),
            )
        rows = list(chunk[:chunk_size])
        yield from rows
        if len(rows) < chunk_size:
            return
        last = rows[-1]
