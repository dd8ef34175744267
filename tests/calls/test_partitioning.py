"""The calls table partitioned by month (docs/scaling.md, "100 million calls"):
a partitioned copy of calls_call in the test database, with a few months of
rows and the dashboard's (organization, started_at, id) index created on the
parent (so every month gets its own, partition-local index). The dashboard's
own keyset queries (calls_page, captured as the app sends them) return the same
rows from the copy as from the plain table; their plans read partition-local
indexes in order (no sort, no sequential scan), and a date-range filter prunes
the months outside it."""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from calls.models import Call
from tests.calls.helpers import Sort, bulk_calls, calls_page

pytestmark = pytest.mark.django_db

MONTHS = [datetime(2026, m, 1, tzinfo=UTC) for m in (7, 8, 9, 10, 11)]  # four full months, and a bound
PARTITIONED = "calls_call_by_month"


def month_name(start: datetime) -> str:
    return f"{PARTITIONED}_y{start:%Y}m{start:%m}"


@pytest.fixture
def months_of_calls(org, other_org, member, other_member):
    rows = []
    for n in range(480):
        # 120 calls a month, two organizations, a few started at the same second (ties on started_at).
        started = MONTHS[0] + timedelta(hours=6 * (n // 2))
        rows.append({"title": f"Call {n}", "rep": member.user, "started_at": started})
    bulk_calls(org, rows)
    bulk_calls(other_org, [{**r, "rep": other_member.user} for r in rows[::3]])


@pytest.fixture
def partitioned_copy(months_of_calls):
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {PARTITIONED} (LIKE calls_call INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
            " PARTITION BY RANGE (started_at)"
        )
        cursor.execute(f"ALTER TABLE {PARTITIONED} ADD PRIMARY KEY (id, started_at)")
        for start, end in itertools.pairwise(MONTHS):
            cursor.execute(
                f"CREATE TABLE {month_name(start)} PARTITION OF {PARTITIONED} FOR VALUES FROM (%s) TO (%s)",
                [start, end],
            )
        # On the parent: PostgreSQL creates the same index on every month, and on months added later.
        cursor.execute(f"CREATE INDEX {PARTITIONED}_org_started_id ON {PARTITIONED} (organization_id, started_at, id)")
        cursor.execute(f"INSERT INTO {PARTITIONED} SELECT * FROM calls_call")
        cursor.execute(f"ANALYZE {PARTITIONED}")
    return PARTITIONED


def app_query(queryset, cursor: str = "") -> tuple[str, list[int]]:
    """The rows query calls_page sends for the newest-first dashboard, and the ids it returned."""
    with CaptureQueriesContext(connection) as queries:
        page = calls_page(queryset, Sort.parse("-started"), 50, cursor)
    [sql] = [q["sql"] for q in queries.captured_queries if "ORDER BY" in q["sql"] and "LIMIT" in q["sql"]]
    return sql, [c.pk for c in page.rows], page


def on_copy(sql: str) -> str:
    return sql.replace('"calls_call"', f'"{PARTITIONED}"')


def ids_from(sql: str) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        columns = [c.name for c in cursor.description]
        return [row[columns.index("id")] for row in cursor.fetchall()][:50]


def plan_nodes(sql: str) -> list[dict]:
    with connection.cursor() as cursor:
        # Tiny test tables would be read sequentially whatever the indexes; the question is
        # whether the partition-local indexes can serve the query, as at a million rows a month.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}")
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    nodes, stack = [], [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack.extend(node.get("Plans", []))
    return nodes


def scanned_partitions(nodes: list[dict]) -> set[str]:
    return {n["Relation Name"] for n in nodes if "Relation Name" in n}


def test_keyset_pages_return_the_same_rows_from_the_partitioned_copy(partitioned_copy, org):
    queryset = Call.objects.for_org(org)
    cursor = ""
    for _ in range(4):  # page 1 and three pages deeper, across month boundaries
        sql, ids, page = app_query(queryset, cursor)
        assert ids_from(on_copy(sql)) == ids
        cursor = page.next_cursor
    assert cursor


def test_keyset_pages_on_the_partitioned_copy_read_partition_local_indexes_in_order(partitioned_copy, org):
    sql, _, page = app_query(Call.objects.for_org(org))
    sql, _, _ = app_query(Call.objects.for_org(org), page.next_cursor)

    nodes = plan_nodes(on_copy(sql))

    scans = [n for n in nodes if "Relation Name" in n]
    assert scans
    assert {n["Node Type"] for n in scans} <= {"Index Scan", "Index Only Scan"}
    assert all(n["Index Name"].startswith(f"{PARTITIONED}_y") for n in scans)  # each month's own index
    assert all(n["Scan Direction"] == "Backward" for n in scans)
    assert not any(n["Node Type"] in ("Sort", "Incremental Sort", "Seq Scan") for n in nodes)


def test_a_date_range_filter_prunes_the_months_outside_it(partitioned_copy, org):
    september = Call.objects.for_org(org).filter(started_at__gte=MONTHS[2], started_at__lt=MONTHS[3])
    sql, ids, _ = app_query(september)

    assert ids_from(on_copy(sql)) == ids
    assert scanned_partitions(plan_nodes(on_copy(sql))) == {month_name(MONTHS[2])}
