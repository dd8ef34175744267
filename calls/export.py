"""The CSV export of a selection: streamed, and safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator

from django.db.models import QuerySet
from django.utils import timezone

from calls.models import Call
from resilience.db import keyset_chunks

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


# OWASP "CSV injection": a cell a spreadsheet reads as a formula starts with
# one of these (after blanks, which spreadsheets skip), or with a tab or CR.
FORMULA_STARTS = ("=", "+", "-", "@")
# A separator some spreadsheet may split a cell on (its locale's list separator,
# "text to columns"), then blanks, then a formula start: that piece would be a
# formula cell of its own, so it gets the quote too.
SPLIT_FORMULA = re.compile(r"([,;\t|\r\n] *)([=+\-@])")


def csv_safe(value: object) -> object:
    """Text typed by people (titles, customer names) made inert in a spreadsheet:
    a quote goes before a leading formula character (or a leading tab/CR) and
    before each formula character that follows a separator.

    Only text is touched: our own numbers (a negative sentiment such as -0.4)
    are written unchanged, while a title "-0.4" is text and gets the quote,
    since text is where an attacker's "-1+cmd|..." would come from."""
    if not isinstance(value, str) or not value:
        return value
    if value[0] in ("\t", "\r") or value.lstrip()[:1] in FORMULA_STARTS:
        value = "'" + value
    return SPLIT_FORMULA.sub(r"\1'\2", value)


def export_csv_lines(calls: QuerySet[Call]) -> Iterator[str]:
    """The CSV of `calls`, newest first, produced lazily: rows come in keyset
    chunks of CSV_CHUNK_ROWS (no server-side cursor, which a transaction-pooling
    PgBouncer would break), so memory stays flat whether it is ten calls or a
    million."""
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
