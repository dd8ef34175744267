"""`python manage.py rebuild_rollups [--org SLUG] [--days N]`: rebuild the analytics rollups from the calls."""

from __future__ import annotations

import time
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from analytics.rollups import analyze_rollups, local_day, rebuild_rollups
from calls.tenancy.models import Organization


class Command(BaseCommand):
    help = "Rebuild the analytics rollups from the calls (all days, or the last N days), per organization."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", help="Only this organization (slug).")
        parser.add_argument("--days", type=int, help="Only the last N local days (default: every day).")

    def handle(self, *args: object, **opts: object) -> None:
        organizations = Organization.objects.order_by("id")
        if opts["org"]:
            organizations = organizations.filter(slug=opts["org"])
            if not organizations.exists():
                raise CommandError(f"No organization with slug {opts['org']!r}.")
        days = opts["days"]
        if days is not None and days < 1:
            raise CommandError("--days must be 1 or more.")
        first = last = None
        if days is not None:
            last = local_day(timezone.now())
            first = last - timedelta(days=days - 1)
        for org in organizations:
            started = time.perf_counter()
            rows = rebuild_rollups(org.pk, first, last)
            elapsed = time.perf_counter() - started
            self.stdout.write(f"{org.slug}: {rows:,} daily rollup rows in {elapsed:.2f} s")
        analyze_rollups()
        self.stdout.write(self.style.SUCCESS("Rollups rebuilt."))
