"""The CSV export behind PgBouncer in transaction pooling mode: with
DISABLE_SERVER_SIDE_CURSORS (CALLIQ_DB_PGBOUNCER=1) it still streams, in keyset
chunks (resilience/db.py) — every row once, in order, ties on started_at
included — and never through a server-side cursor."""

from __future__ import annotations

import csv
import io

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from calls import export as listing
from calls.models import Call
from calls.selection import set_calls_selected
from resilience.db import keyset_chunks
from tests.calls.helpers import BASE_TIME, bulk_calls


@pytest.fixture
def no_server_side_cursors():
    connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = True
    yield
    connection.settings_dict["DISABLE_SERVER_SIDE_CURSORS"] = False


@pytest.fixture
def tied_calls(org, member):
    # Three calls per start time: a chunk boundary falls inside a group of ties.
    rows = [
        {"title": f"Tie {n:02d}", "rep": member.user, "started_at": BASE_TIME.replace(minute=n // 3)} for n in range(25)
    ]
    return bulk_calls(org, rows)


def test_the_export_streams_every_row_once_in_keyset_chunks_without_a_server_side_cursor(
    client, org, member, tied_calls, no_server_side_cursors, monkeypatch
):
    monkeypatch.setattr(listing, "CSV_CHUNK_ROWS", 4)
    set_calls_selected(org, member.user, [c.pk for c in tied_calls], selected=True)
    client.force_login(member.user)

    with CaptureQueriesContext(connection) as queries:
        response = client.post(reverse("calls:export"))
        body = b"".join(response.streaming_content).decode()

    assert response.streaming
    ids = [int(row["id"]) for row in csv.DictReader(io.StringIO(body))]
    newest_first = sorted(tied_calls, key=lambda c: (c.started_at, c.pk), reverse=True)
    assert ids == [c.pk for c in newest_first]
    chunk_queries = [q["sql"] for q in queries.captured_queries if "LIMIT 4" in q["sql"]]
    assert len(chunk_queries) == 7  # 25 rows, 4 a chunk: six full chunks and a short one


def test_keyset_chunks_go_in_either_direction_and_refuse_mixed_directions(org, member, tied_calls):
    calls = Call.objects.for_org(org)
    oldest_first = [
        pk for pk, _ in keyset_chunks(calls, fields=("id", "started_at"), order=("started_at", "id"), chunk_size=2)
    ]
    assert oldest_first == [c.pk for c in sorted(tied_calls, key=lambda c: (c.started_at, c.pk))]
    with pytest.raises(ValueError, match="same direction"):
        list(keyset_chunks(calls, fields=("id", "started_at"), order=("-started_at", "id"), chunk_size=2))
