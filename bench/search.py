"""Transcript search benchmark: ranked full-text search with highlights against
a case-insensitive contains (`icontains`) over the same transcripts.

Needs PostgreSQL with an organization holding many full transcripts, e.g.
200,000 among 1,000,000 calls:

    DATABASE_URL=postgres://…/calliq_search_bench python manage.py seed_demo \\
        --calls 1000000 --orgs 1 --seed 42 --transcripts 200000 --reset
    DATABASE_URL=postgres://…/calliq_search_bench DJANGO_SECRET_KEY=x python bench/search.py [--runs 20]

For each query it times calls.search.search_calls(): the first page (20 calls)
ranked by ts_rank_cd with each call's matching turns highlighted by
ts_headline, exactly what the page and the API run. The baseline answers the
same question the slow way, over the same rows: every transcript of the
organization whose utterances contain the phrase, by Django's `icontains` on
the JSON (UPPER(utterances::text) LIKE UPPER('%…%'), no index can serve it),
collecting every matching call, as any ranking must. The baseline runs fewer
times (it takes seconds); ratios compare p50s measured in the same run. The
number of matching transcripts is printed per query: the ranked search ranks
every match, so its cost grows with that number, not with the corpus.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calliq.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402

from calls.models import Call, Transcript  # noqa: E402
from calls.search import SearchRequest, search_calls  # noqa: E402
from calls.tenancy.models import Organization  # noqa: E402
from calls.transcript_index import POSTGRES  # noqa: E402

# (query as typed, the phrase the icontains baseline looks for, a word it excludes)
QUERIES = [
    ('"renewal uplift"', "renewal uplift", None),
    ("Chorusly", "chorusly", None),
    ('"single sign-on"', "single sign-on", None),
    ('"price increase" -discount', "price increase", "discount"),
    ('"price increase"', "price increase", None),
    ('"security review"', "security review", None),
]


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timed(function, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="timed runs of each ranked search (default 20)")
    parser.add_argument("--baseline-runs", type=int, default=3, help="timed runs of each icontains baseline")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        sys.exit("bench/search.py measures PostgreSQL's full-text search: set DATABASE_URL to a PostgreSQL database.")
    top = (
        Transcript.objects.values("call__organization")
        .annotate(n=Count("id"))
        .order_by("-n")
        .values_list("call__organization", "n")
        .first()
    )
    if top is None:
        sys.exit("No transcripts: seed with `manage.py seed_demo --transcripts 200000` first.")
    org = Organization.objects.get(pk=top[0])
    calls = Call.objects.for_org(org).count()
    load = os.getloadavg()
    print("Transcript search benchmark")
    print(f"database: postgresql {connection.pg_version}")
    print(f"organization {org.slug}: {calls:,} calls, {top[1]:,} transcripts")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_size_pretty(pg_total_relation_size('calls_transcript')),"
            " pg_size_pretty(pg_relation_size('transcript_search_gin'))"
        )
        table_size, index_size = cursor.fetchone()
    print(f"transcripts table with TOAST and indexes: {table_size}; GIN index: {index_size}")
    print(f"runs: {args.runs} (baseline: {args.baseline_runs}); times in milliseconds")
    print(f"machine: {os.cpu_count()} cores, load average at start {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print()
    header = (
        f"{'query':<30}{'matches':>9}{'p50 ms':>10}{'p95 ms':>10}{'icontains p50':>15}{'faster':>9}{'p95<=100':>10}"
    )
    print(header)
    for typed, phrase, excluded in QUERIES:
        tsquery = POSTGRES.prepare(typed)
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM calls_transcript WHERE search_vector @@ %s::tsquery", [tsquery])
            matches = cursor.fetchone()[0]
        request = SearchRequest(q=typed)
        page = search_calls(org, request)  # warm-up, and a check that it finds what it should
        assert page.hits, typed
        assert all(hit.turns for hit in page.hits), typed
        ranked = timed(lambda request=request: search_calls(org, request), args.runs)
        baseline_rows = Transcript.objects.filter(call__organization=org, utterances__icontains=phrase)
        if excluded:
            baseline_rows = baseline_rows.exclude(utterances__icontains=excluded)
        found = len(list(baseline_rows.values_list("call_id", flat=True)))
        baseline = timed(lambda rows=baseline_rows: list(rows.values_list("call_id", flat=True)), args.baseline_runs)
        p50, p95, base = statistics.median(ranked), percentile(ranked, 0.95), statistics.median(baseline)
        print(
            f"{typed:<30}{matches:>9,}{p50:>10.1f}{p95:>10.1f}{base:>15.1f}{base / p50:>8.1f}x"
            f"{'yes' if p95 <= 100 else 'no':>10}"
        )
        # icontains matches the raw phrase anywhere (also across punctuation the tsquery ignores);
        # full-text search matches stems, so the counts differ somewhat. Shown so that is visible.
        print(f"{'':<30}{'icontains found ' + format(found, ','):>39}")
    print()
    print("matches: transcripts whose tsvector matches (every one is ranked for each page).")
    print("faster: icontains p50 / ranked p50, same run. Goal: p95 <= 100 ms and >= 20x faster.")


if __name__ == "__main__":
    main()
