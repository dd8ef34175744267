"""python manage.py warm_cache [--org SLUG] [--only calls,analytics] [--max-users N] [--dry-run]"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from resilience.cache.warming import UnknownScope, plan, warm, warmables


class Command(BaseCommand):
    help = (
        "Warm the cache: request each organization's first dashboard pages and default analytics views "
        "as its members (most senior and most recent first). Idempotent: a second run finds them warm."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", metavar="SLUG", help="Warm only this organization.")
        parser.add_argument("--only", metavar="AREAS", help="Comma-separated areas, e.g. calls,analytics.")
        parser.add_argument("--max-users", type=int, default=10, help="Members warmed per organization (default 10).")
        parser.add_argument("--dry-run", action="store_true", help="List what would be requested; request nothing.")

    def handle(self, *args: Any, **options: Any) -> None:
        only = [a.strip() for a in options["only"].split(",") if a.strip()] if options["only"] else None
        known = {w.area for w in warmables()}
        if only and not set(only) <= known:
            raise CommandError(
                f"Unknown area(s) {', '.join(sorted(set(only) - known))}; known: {', '.join(sorted(known))}."
            )
        if options["max_users"] < 1:
            raise CommandError("--max-users must be at least 1.")
        start = time.perf_counter()
        try:
            # The apps' registered audience reads --org (calls: an organization slug).
            requests = list(plan(options["org"] or None, only=only, max_users=options["max_users"]))
        except UnknownScope as exc:
            raise CommandError(str(exc)) from exc
        if options["dry_run"]:
            for item in requests:
                hx = " (htmx partial)" if item.htmx else ""
                self.stdout.write(f"{item.reader.scope}\t{item.reader.who}\t{item.url}{hx}")
            self.stdout.write(f"Dry run: {len(requests)} request(s) planned in {time.perf_counter() - start:.2f}s.")
            return

        with tqdm(total=len(requests), unit="req", desc="warming", file=self.stderr, disable=None) as bar:
            report = warm(requests, progress=lambda _item: bar.update(1))
        for failure in report.failures[:20]:
            self.stderr.write(f"failed: {failure}")
        self.stdout.write(
            f"Warmed {report.warmed}, already warm {report.already_warm}, not cached {report.not_cached}, "
            f"failed {report.failed} of {report.requests} request(s) in {time.perf_counter() - start:.2f}s."
        )
        if report.not_cached:
            self.stdout.write("Views answering without X-Cache are not decorated with @cached_view yet.")
