"""Calls dashboard: keyset pages against Django's Paginator (OFFSET), same data, same run.

Needs PostgreSQL with the demo data in ONE organization (bench/run.sh seeds a
million calls), e.g.:

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/calliq_bench \\
    DJANGO_SECRET_KEY=bench python bench/calls_dashboard.py

For each case (sort in both directions, a filter, a search) it measures, for
page 1 and for a page DEEP pages down (or the deepest page there is):
  - the whole table request: the htmx table fragment through Django's test
    Client, signed in, middleware, two-query table, template and all;
  - the query alone: the rows query of the page;
and the same with Django's Paginator (COUNT + OFFSET) rendering the same
template. p50/p95 over REPEAT runs; ratios = OFFSET time / keyset time.

Then the filter x sort matrix: page 1 and the last page of every filter the
table offers under every sort, with EXPLAIN ANALYZE of the cells over the bar
(BENCH_MATRIX=0 skips it; BENCH_CASES=- runs the matrix alone, with
BENCH_EXPORT=0; BENCH_MATRIX_FILTERS=outcome=won,rep picks filters by label).

The comparison runs with the cache layer OFF (calls:list carries
@cached_view): with it on, every repeated keyset request would be a cache hit
and the table would compare Redis against OFFSET. A last section then serves
the same page-1 and deep-page requests as cache hits (the cache turned on for
that section only) against the uncached request, interleaved in the same run.
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calliq.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "calliq-bench-only")
os.environ.setdefault("CALLIQ_STATIC_MANIFEST", "0")
# The keyset/OFFSET comparison measures the uncached path: calls:list is behind
# @cached_view, and with the cache on every repeated request after the first
# would be a Redis hit. Forced (not setdefault) so an exported value cannot
# turn it back on; the cache-hit section switches a service of its own on.
os.environ["CALLIQ_CACHE_ENABLED"] = "0"

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.paginator import Paginator  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count, F  # noqa: E402
from django.http import QueryDict  # noqa: E402
from django.shortcuts import render  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.urls import path  # noqa: E402

import calliq.urls  # noqa: E402
from calls import views  # noqa: E402
from calls.export import CSV_FIELDS  # noqa: E402
from calls.filters import CallFilters  # noqa: E402
from calls.forms import parse_listing  # noqa: E402
from calls.keyset import AFTER, BEFORE, CallPage, Position, encode_cursor, keyset_rows  # noqa: E402
from calls.models import Call  # noqa: E402
from calls.selection import (  # noqa: E402
    TablePage,
    Total,
    select_all_matching,
    table_summary,
    with_selection_flag,
)
from calls.tenancy.decorators import organization_required  # noqa: E402
from calls.tenancy.models import Membership, Organization  # noqa: E402
from resilience.cache import CacheService  # noqa: E402
from resilience.cache import service as cache_module  # noqa: E402

PAGE_SIZE = 50
DEEP = int(os.environ.get("BENCH_DEEP_PAGES", "10000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "20"))
REPEAT_OFFSET = int(os.environ.get("BENCH_REPEAT_OFFSET", "5"))
CASES = [
    ("started ↓", "sort=-started"),
    ("started ↑", "sort=started"),
    ("duration ↓", "sort=-duration"),
    ("duration ↑", "sort=duration"),
    ("score ↓", "sort=-score"),
    ("score ↑", "sort=score"),
    ("sentiment ↓", "sort=-sentiment"),
    ("sentiment ↑", "sort=sentiment"),
    ("filter status=completed", "status=completed"),
    ("filter outcome=won, score ↓", "outcome=won&sort=-score"),
    ("search 'with'", "q=with"),
    ("search 'harbor'", "q=harbor"),
]


def offset_order(listing):
    """The OFFSET baseline's ORDER BY: the keyset order where an index serves it.
    Descending on a nullable column, our order (NULLS LAST) has no index, so the
    baseline gets PostgreSQL's natural, indexed NULLS FIRST order instead: a
    baseline as fast as OFFSET can be, not one slowed down by a sort."""
    column = listing.sort.column
    if listing.sort.descending:
        return [F(column).desc(), F("id").desc()]
    return [F(column).asc(), F("id").asc()]


def same_order_as_keyset(listing):
    return not (listing.sort.nullable and listing.sort.descending)


@organization_required
def offset_table(request):
    """The same table fragment as calls:list, paged by Django's Paginator."""
    listing = parse_listing(request.GET)
    matching = Call.objects.for_org(request.organization).filtered(listing.filters)
    selection, _ = table_summary(request.organization, request.user, None)
    rows = with_selection_flag(matching.for_table(), selection).order_by(*offset_order(listing))
    paginator = Paginator(rows, listing.size)
    number = paginator.validate_number(request.GET.get("page", 1))
    page = paginator.page(number)
    call_page = CallPage(
        rows=list(page.object_list),
        sort=listing.sort,
        size=listing.size,
        has_next=page.has_next(),
        has_prev=page.has_previous(),
    )
    table = TablePage(listing, call_page, selection, Total(paginator.count, exact=True))
    return render(request, "calls/list.html#results", views.table_context(request, table) | {"oob_errors": True})


calliq.urls.urlpatterns.append(path("bench/offset-table/", offset_table))


def percentiles(samples):
    samples = sorted(samples)
    p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
    return statistics.median(samples), p95


def interleaved(fns, repeats):
    """Time each fn `repeats[i]` times, round-robin, so load from elsewhere on
    the machine falls on all of them alike. Returns (p50, p95) per fn in ms."""
    samples = [[] for _ in fns]
    for round_number in range(max(repeats)):
        for i, fn in enumerate(fns):
            if round_number < repeats[i]:
                started = time.perf_counter()
                fn()
                samples[i].append((time.perf_counter() - started) * 1000)
    return [percentiles(s) for s in samples]


def count_queries(fn):
    with CaptureQueriesContext(connection) as captured:
        fn()

    def middleware(sql):  # the session, the signed-in user by id, their memberships
        table = re.search(r'FROM "(\w+)"', sql).group(1)
        return table in ("django_session", "calls_membership") or (
            table == "auth_user" and 'WHERE "auth_user"."id" = ' in sql
        )

    return sum(1 for q in captured.captured_queries if not middleware(q["sql"]))


def get(client, url, x_cache=None):
    """One htmx table request. `x_cache` is the X-Cache the response must carry
    (calls:list is @cached_view; our OFFSET view has no cache, hence no header)."""
    response = client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 200, (url, response.status_code)
    assert response.get("X-Cache") == x_cache, (url, response.get("X-Cache"), "expected", x_cache)


def keyset_anchor(rows_qs, listing, offset):
    """(value, id) of the row just before page `offset / PAGE_SIZE + 1` in the
    keyset order (NULLs last both ways): where a person paging there would be."""
    column = listing.sort.column
    nulls_last = F(column).desc(nulls_last=True) if listing.sort.descending else F(column).asc(nulls_last=True)
    tie = F("id").desc() if listing.sort.descending else F("id").asc()
    return rows_qs.order_by(nulls_last, tie).values_list(column, "id")[offset - 1]


def main():
    if connection.vendor != "postgresql":
        sys.exit("This benchmark needs PostgreSQL (set DATABASE_URL).")
    biggest = Call.objects.values("organization").annotate(n=Count("id")).order_by("-n").first()
    if not biggest:
        sys.exit("No calls: seed first (python manage.py seed_demo --calls 1000000 --orgs 1).")
    org = Organization.objects.get(pk=biggest["organization"])
    user = get_user_model().objects.create_user(username=f"bench-{time.time_ns()}@example.com")
    Membership.objects.create(user=user, organization=org, role=Membership.Role.MANAGER)
    client = Client(SERVER_NAME="localhost")
    client.force_login(user)
    print(f"Calls dashboard on PostgreSQL: {biggest['n']:,} calls in one organization ({org.name}).")
    print(f"Machine: {os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.1f} (shared with other work).")
    print(f"Page size {PAGE_SIZE}; deep page = {DEEP:,} pages down; p50/p95 in ms over {REPEAT} runs")
    print(f"({REPEAT_OFFSET} for OFFSET deep pages). Ratio = OFFSET / keyset. q = SQL queries of the view")
    print("(the middleware's session/user/membership lookups excluded: the same for both). The OFFSET")
    print("baseline is Django's Paginator (COUNT + OFFSET) rendering the same template; descending on")
    print("score/sentiment it uses PostgreSQL's indexed NULLS FIRST order (ours is NULLS LAST).\n")

    header = (
        f"{'case':<30}{'page':>7} | {'keyset req p50/p95':>19} {'q':>2} | {'OFFSET req p50/p95':>19} {'q':>2} |"
        f" {'req x':>6} | {'keyset query':>12} {'OFFSET query':>12} {'query x':>8}"
    )
    print(header)
    print("-" * len(header))
    results = []
    hit_variants = []  # the first case's page 1 and deep page, for the cache-hit section
    only = os.environ.get("BENCH_CASES", "")
    for label, query in CASES:
        if only and only not in label:
            continue
        listing = parse_listing(QueryDict(query + f"&size={PAGE_SIZE}"))
        assert not listing.errors, listing.errors
        matching = Call.objects.for_org(org).filtered(listing.filters)
        rows_qs = with_selection_flag(matching.for_table(), table_summary(org, user, None)[0])
        ordered = rows_qs.order_by(*offset_order(listing))
        total = matching.count()
        last_page = max(1, -(-total // PAGE_SIZE))
        variants = []
        for page_number in (1, min(DEEP + 1, last_page)):
            offset = (page_number - 1) * PAGE_SIZE
            position = None
            cursor = ""
            if offset:
                anchor = keyset_anchor(rows_qs, listing, offset)
                position = Position(AFTER, value=anchor[0], call_id=anchor[1])
                cursor = encode_cursor(listing.sort, position)
            keyset_url = listing.url("/calls/", cursor=cursor)
            offset_url = f"/bench/offset-table/?{query}&size={PAGE_SIZE}&page={page_number}"
            keyset_ids = [c.pk for c in keyset_rows(rows_qs, listing.sort, position, PAGE_SIZE)]
            if same_order_as_keyset(listing):
                offset_ids = list(ordered.values_list("id", flat=True)[offset : offset + PAGE_SIZE])
                assert keyset_ids == offset_ids, f"{label} page {page_number}: keyset and OFFSET disagree"
            assert len(keyset_ids) == min(PAGE_SIZE, total - offset)
            variants.append(
                {
                    "page": page_number,
                    "keyset_url": keyset_url,
                    "keyset_request": lambda url=keyset_url: get(client, url, "BYPASS"),
                    "offset_request": lambda url=offset_url: get(client, url),
                    "keyset_query": lambda p=position, q=rows_qs, s=listing.sort: list(
                        keyset_rows(q, s, p, PAGE_SIZE + 1)
                    ),
                    "offset_query": lambda o=offset, q=ordered: list(q[o : o + PAGE_SIZE + 1]),
                }
            )
        if not hit_variants:
            hit_variants = [(label, v["page"], v["keyset_url"]) for v in variants]
        for v in variants:  # warm: connections, templates, caches of the planner
            v["keyset_request"]()
            v["offset_request"]()
        deep_repeat = [REPEAT if v["page"] == 1 else REPEAT_OFFSET for v in variants]
        k_req = interleaved([v["keyset_request"] for v in variants], [REPEAT] * len(variants))
        o_req = interleaved([v["offset_request"] for v in variants], deep_repeat)
        k_q = interleaved([v["keyset_query"] for v in variants], [REPEAT] * len(variants))
        o_q = interleaved([v["offset_query"] for v in variants], deep_repeat)
        for i, v in enumerate(variants):
            kq, oq = count_queries(v["keyset_request"]), count_queries(v["offset_request"])
            row = (label, v["page"], k_req[i], o_req[i], k_q[i], o_q[i], kq, oq)
            results.append(row)
            print(
                f"{label:<30}{v['page']:>7} | {k_req[i][0]:>8.1f} /{k_req[i][1]:>8.1f} {kq:>2} |"
                f" {o_req[i][0]:>8.1f} /{o_req[i][1]:>8.1f} {oq:>2} | {o_req[i][0] / k_req[i][0]:>5.1f}x |"
                f" {k_q[i][0]:>10.2f}ms {o_q[i][0]:>10.2f}ms {o_q[i][0] / k_q[i][0]:>7.0f}x",
                flush=True,
            )

    if results:
        print("\nTargets (issue 3), over the cases with a page DEEP pages down (worst / median):")
        deep = [r for r in results if r[1] == DEEP + 1]
        first = {r[0]: r for r in results if r[1] == 1}

        def worst_median(values, worst):
            return f"{worst(values):.2f} / {statistics.median(values):.2f}" if values else "n/a"

        depth = [r[2][0] / first[r[0]][2][0] for r in deep]
        request_x = [r[3][0] / r[2][0] for r in deep]
        query_x = [r[5][0] / r[4][0] for r in deep]
        p95s = [r[2][1] for r in first.values()]
        print(f"  deep page / page 1, request p50 (target <= 1.5):   {worst_median(depth, max)}")
        print(f"  OFFSET / keyset, deep request (target >= 25):      {worst_median(request_x, min)}")
        print(f"  OFFSET / keyset, deep query (target >= 200):       {worst_median(query_x, min)}")
        print(f"  page 1 request p95 ms (target < 30):               {worst_median(p95s, max)}")
        print(f"  SQL queries per keyset table request:              at most {max(r[6] for r in results)}")
        print(
            "  cases with fewer than DEEP pages are measured at their last page: "
            + (", ".join(f"{r[0]} ({r[1]:,})" for r in results if r[1] not in (1, DEEP + 1)) or "none")
        )
    if os.environ.get("BENCH_MATRIX", "1") == "1":
        matrix_section(client, org, user)
    if results and os.environ.get("BENCH_CACHE_HITS", "1") == "1":
        cache_hit_section(client, hit_variants)
    if os.environ.get("BENCH_EXPORT", "1") == "1":
        export_section(client, org, user)
    print(f"  load average at the end: {os.getloadavg()[0]:.1f}")
    user.delete()


# The filter x sort matrix: every filter the table offers (one value each, the
# rarer where there is a choice), under every sort in both directions.
MATRIX_FILTERS = [
    ("none", ""),
    ("status=completed", "status=completed"),
    ("status=failed", "status=failed"),
    ("outcome=won", "outcome=won"),
    ("outcome=unknown", "outcome=unknown"),
    ("rep", "rep={rep}"),
    ("sentiment=negative", "sentiment=negative"),
    ("score 90-100", "score_min=90"),
    ("last 30 days", "started_from={recent}"),
    ("search 'harbor'", "q=harbor"),
]
MATRIX_SORTS = ["-started", "started", "-duration", "duration", "-score", "score", "-sentiment", "sentiment"]


def explain(rows_qs, sort, position):
    """EXPLAIN (ANALYZE, BUFFERS) of the rows query of one page, as PostgreSQL ran it."""
    with CaptureQueriesContext(connection) as captured:
        list(keyset_rows(rows_qs, sort, position, PAGE_SIZE + 1))
    sql = captured.captured_queries[-1]["sql"]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def matrix_section(client, org, user):
    """Page 1 and the last page ("jump to last": the deepest a person can go in
    one click) of every filter x sort, as whole htmx table requests, interleaved.
    The bar: last page <= 1.5x page 1 and p95 <= 30 ms; the cells over it get
    the EXPLAIN ANALYZE of their rows query."""
    rep = Call.objects.for_org(org).exclude(rep=None).values_list("rep_id", flat=True).first()
    newest = Call.objects.for_org(org).order_by("-started_at").values_list("started_at", flat=True).first()
    recent = (newest - timedelta(days=30)).date().isoformat()
    repeat = int(os.environ.get("BENCH_MATRIX_REPEAT", "10"))
    print("\nFilter x sort matrix: page 1 and the last page (jump to last) as htmx table requests,")
    print(f"p50/p95 ms over {repeat} runs, interleaved; x = last / page 1 (bar: x <= 1.5, p95 <= 30 ms).")
    header = f"{'filter':<20}{'sort':>11}{'matches':>10} | {'page 1 p50/p95':>15} | {'last p50/p95':>15} | {'x':>5}"
    print(header)
    print("-" * len(header))
    over = []
    selection = table_summary(org, user, None)[0]
    only = [name for name in os.environ.get("BENCH_MATRIX_FILTERS", "").split(",") if name]
    for label, template in MATRIX_FILTERS:
        if only and label not in only:
            continue
        query = template.format(rep=rep, recent=recent)
        for sort_param in MATRIX_SORTS:
            listing = parse_listing(QueryDict(f"{query}&sort={sort_param}&size={PAGE_SIZE}"))
            assert not listing.errors, listing.errors
            matching = Call.objects.for_org(org).filtered(listing.filters)
            end = Position(BEFORE)
            urls = [listing.url("/calls/"), listing.url("/calls/", cursor=encode_cursor(listing.sort, end))]
            fns = [lambda url=url: get(client, url, "BYPASS") for url in urls]
            for fn in fns:
                fn()
            (first, last) = interleaved(fns, [repeat, repeat])
            ratio = last[0] / first[0]
            total = matching.count()
            flag = "  <-- over the bar" if ratio > 1.5 or max(first[1], last[1]) > 30 else ""
            print(
                f"{label:<20}{sort_param:>11}{total:>10,} | {first[0]:>6.1f} /{first[1]:>6.1f} |"
                f" {last[0]:>6.1f} /{last[1]:>6.1f} | {ratio:>4.1f}x{flag}",
                flush=True,
            )
            if flag:
                over.append((max(ratio, 1 / ratio), label, listing, matching))
    print(f"\n{len(over)} cells over the bar (on a loaded machine p95 alone can put a cell there).")
    # The plans of the cells whose two pages differ most: where the page depth costs.
    for _, label, listing, matching in sorted(over, key=lambda cell: -cell[0])[
        : int(os.environ.get("BENCH_MATRIX_EXPLAIN", "3"))
    ]:
        rows_qs = with_selection_flag(matching.for_table(), selection)
        for page, position in (("page 1", None), ("last page", Position(BEFORE))):
            plan = explain(rows_qs, listing.sort, position)
            print(f"\nEXPLAIN ANALYZE, {label}, sort={listing.sort.param}, {page}:\n{plan}")


def enabled_cache_service():
    """A cache service with the cache ON, for the cache-hit section only (this
    process's own, settings-built service is off; see the top of the file)."""
    with override_settings(CALLIQ_CACHE={**settings.CALLIQ_CACHE, "ENABLED": True}):
        service = CacheService()
    assert service.enabled, "the cache-hit section needs REDIS_URL"
    return service


def served_by(service, fn):
    """fn with `service` as the process's cache service while it runs: swapping
    the module's singleton is the cheapest way to serve the same request
    uncached and cached, interleaved, in one process."""

    def run():
        saved = cache_module._service
        cache_module._service = service
        try:
            fn()
        finally:
            cache_module._service = saved

    return run


def cache_hit_section(client, hit_variants):
    """The same keyset requests served as @cached_view hits (cache ON, the
    entry stored by a first request; every timed request asserts X-Cache: HIT)
    against the uncached request (cache OFF, X-Cache: BYPASS), interleaved."""
    enabled = enabled_cache_service()
    off = cache_module.cache_service()
    fns, labels = [], []
    for label, page, url in hit_variants:
        get(client, url, "BYPASS")
        served_by(enabled, lambda url=url: get(client, url, "MISS"))()  # stores the entry
        fns += [
            served_by(off, lambda url=url: get(client, url, "BYPASS")),
            served_by(enabled, lambda url=url: get(client, url, "HIT")),
        ]
        labels.append((label, page))
    timings = interleaved(fns, [REPEAT] * len(fns))
    queries = [count_queries(fn) for fn in fns]
    print("\nThe same table requests served from the cache (@cached_view, per_user preset, Redis),")
    print("against the same request uncached (cache off: X-Cache BYPASS, as in the table above);")
    print(f"interleaved, p50/p95 in ms over {REPEAT} runs; every cached request asserted X-Cache: HIT.")
    print("q = SQL queries of the view, middleware lookups excluded as above. Ratio = uncached / hit.")
    head = f"{'case':<30}{'page':>7} | {'uncached p50/p95':>19} {'q':>2} | {'cache hit p50/p95':>19} {'q':>2} |"
    head += f" {'x':>6}"
    print(head)
    print("-" * len(head))
    for i, (label, page) in enumerate(labels):
        cold, hit = timings[2 * i], timings[2 * i + 1]
        print(
            f"{label:<30}{page:>7} | {cold[0]:>8.1f} /{cold[1]:>8.1f} {queries[2 * i]:>2} |"
            f" {hit[0]:>8.1f} /{hit[1]:>8.1f} {queries[2 * i + 1]:>2} | {cold[0] / hit[0]:>5.1f}x",
            flush=True,
        )
    enabled.close()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def export_section(client, org, user):
    """Export every call of the organization as CSV through the real view,
    streamed; then, as the baseline, materialise the same rows in a list."""
    matching = Call.objects.for_org(org)
    select_all_matching(org, user, CallFilters(), Total(matching.count(), exact=True))
    before = peak_rss_mb()
    started = time.perf_counter()
    response = client.post("/calls/selection/export/")
    assert response.streaming
    lines = sum(chunk.count(b"\n") for chunk in response.streaming_content)
    streamed_s = time.perf_counter() - started
    streamed_growth = peak_rss_mb() - before
    started = time.perf_counter()
    rows = list(matching.order_by("-started_at", "-id").values_list(*CSV_FIELDS))
    listed_s = time.perf_counter() - started
    listed_growth = peak_rss_mb() - before
    print("\nCSV export of the whole selection (all calls), through the view:")
    print(f"  streamed: {lines - 1:,} rows in {streamed_s:.1f} s, peak memory grew {streamed_growth:.0f} MB")
    print(f"  baseline, the same rows materialised in a list: {len(rows):,} rows in {listed_s:.1f} s,")
    print(f"  peak memory grew {listed_growth:.0f} MB ({listed_growth / max(streamed_growth, 1):.0f}x the streamed)")


if __name__ == "__main__":
    main()
