"""`python manage.py seed_demo --calls N --orgs K [--seed S] [--reset] [--if-empty]`"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from tqdm import tqdm

from calls.demo import (
    ADMIN_EMAIL,
    ADMIN_PASSWORD,
    DEMO_EMAIL,
    DEMO_PASSWORD,
    SeedOptions,
    reset_demo_data,
    seed_demo,
)
from calls.models import Call
from calls.tenancy.models import Organization


def parse_transcripts(value: str) -> tuple[float, int | None]:
    """`0.05`, `1.0` or `20%` is a share of the completed calls; a whole number
    such as `200000` is how many of them (about: see CallGenerator.wants_transcript)."""
    text = value.strip()
    try:
        if text.endswith("%"):
            share = float(text[:-1]) / 100
        elif "." in text or text == "0":
            share = float(text)
        else:
            count = int(text)
            if count < 0:
                raise CommandError("--transcripts must not be negative.")
            return 0.0, count
    except ValueError as exc:
        raise CommandError("--transcripts is a share (0.05, 1.0, 20%) or a number of calls (200000).") from exc
    if not 0 <= share <= 1:
        raise CommandError("--transcripts as a share is between 0 and 1 (or 0% and 100%).")
    return share, None


class Command(BaseCommand):
    help = "Create demo organizations, users and calls (COPY on PostgreSQL: about a million calls in two minutes)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--calls", type=int, default=20_000, help="How many calls in all (default 20,000).")
        parser.add_argument("--orgs", type=int, default=3, help="How many organizations share them (default 3).")
        parser.add_argument("--seed", type=int, default=42, help="Random seed: the same seed gives the same data.")
        parser.add_argument("--reps", type=int, default=12, help="Reps per organization (default 12).")
        parser.add_argument(
            "--days", type=int, default=180, help="Calls spread over this many days back (default 180)."
        )
        parser.add_argument(
            "--transcripts",
            default="0.05",
            help="Completed calls with a full transcript: a share (0.05, 1.0, 20%%) or a number of calls (200000).",
        )
        parser.add_argument("--anchor", help="Calls end at this date (YYYY-MM-DD, UTC); default today.")
        parser.add_argument("--reset", action="store_true", help="Delete the earlier demo data first.")
        parser.add_argument("--if-empty", action="store_true", help="Do nothing when the database already has calls.")

    def handle(self, *args: object, **opts: object) -> None:
        if opts["calls"] < 0 or opts["orgs"] < 1 or opts["reps"] < 1 or opts["days"] < 1:
            raise CommandError("--calls must be 0 or more; --orgs, --reps and --days at least 1.")
        share, count = parse_transcripts(str(opts["transcripts"]))
        if opts["if_empty"] and Call.objects.exists():
            self.stdout.write("Calls exist already: not seeding (drop --if-empty to add more).")
            return
        if Organization.objects.filter(slug__startswith="demo-").exists() and not opts["reset"]:
            raise CommandError("Demo data exists already: add --reset to replace it.")
        anchor = None
        if opts["anchor"]:
            try:
                anchor = datetime.strptime(opts["anchor"], "%Y-%m-%d").replace(tzinfo=UTC)
            except ValueError as exc:
                raise CommandError("--anchor must be a date like 2026-01-31.") from exc
        options = SeedOptions(
            calls=opts["calls"],
            orgs=opts["orgs"],
            seed=opts["seed"],
            reps_per_org=opts["reps"],
            days=opts["days"],
            transcript_share=share,
            transcript_count=count,
            anchor=anchor,
        )
        started = time.perf_counter()
        if opts["reset"]:
            self.stdout.write("Deleting the earlier demo data…")
            reset_demo_data()
        with tqdm(total=options.calls, unit="call", unit_scale=True, disable=opts["verbosity"] == 0) as bar:
            result = seed_demo(options, progress=bar.update)
        elapsed = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {result.calls:,} calls ({result.analyses:,} analyses, {result.transcripts:,} transcripts) "
                f"in {len(result.organizations)} organizations in {elapsed:.1f} s on {connection.vendor}."
            )
        )
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_size_pretty(pg_database_size(current_database()))")
                self.stdout.write(f"Database size: {cursor.fetchone()[0]}")
        self.stdout.write(f"Demo login:  {DEMO_EMAIL} / {DEMO_PASSWORD}  (manager in every demo organization)")
        self.stdout.write(
            f"Staff login: {ADMIN_EMAIL} / {ADMIN_PASSWORD}  (monitoring and admin; admin in every demo organization)"
        )
