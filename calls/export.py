"""The CSV export of a selection: streamed, and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
from collections.abc import Iterator

from django.db.models import QuerySet
from django.utils import timezone

from calls.models import Call

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
    """The CSV of `calls`, newest first, produced lazily: rows come from a
    server-side cursor CSV_CHUNK_ROWS at a time, so memory stays flat whether
    it is ten calls or a million."""
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    rows = calls.order_by("-started_at", "-id").values_list(*CSV_FIELDS).iterator(chunk_size=CSV_CHUNK_ROWS)
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
