"""Demo data at scale: organizations, reps and calls with realistic, correlated
distributions, deterministic for a given seed.

A rep has a skill; skill raises the score, lowers the rep's talk ratio and
lifts the win rate; sentiment tracks the score; longer calls score a little
higher. Every random draw comes from a generator seeded per organization, so a
seed gives the same rows whatever the batch size.

On PostgreSQL rows are streamed with COPY (generation in Python overlaps with
ingestion in the server); elsewhere they go through bulk_create.
"""

from __future__ import annotations

import io
import json
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.utils import timezone

from calls.dialogue import generate_dialogue
from calls.events import announce_bulk_change
from calls.models import Call, CallAnalysis, Transcript
from calls.tenancy.models import Membership, Organization

DEMO_SLUG_PREFIX = "demo-"
DEMO_EMAIL = "demo@calliq.example"
DEMO_PASSWORD = "calliq-demo"
ADMIN_EMAIL = "admin@calliq.example"
ADMIN_PASSWORD = "calliq-admin"
ANALYSIS_MODEL = "gpt-4o-mini"

ORGANIZATION_NAMES = [
    "Acme Sales", "Globex", "Initech", "Umbrella Partners", "Stark Solutions", "Wayne Ventures",
    "Hooli", "Pied Piper", "Vandelay Industries", "Soylent", "Cyberdyne", "Tyrell Group",
]  # fmt: skip
FIRST_NAMES = [
    "Ava", "Ben", "Chloe", "Daniel", "Emma", "Farid", "Grace", "Hugo", "Isla", "Jamal", "Kira", "Liam",
    "Maya", "Noah", "Olivia", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor", "Wen", "Yusuf", "Zoe",
]  # fmt: skip
LAST_NAMES = [
    "Anderson", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Hughes", "Ito", "Jensen", "Khan",
    "Lopez", "Martin", "Nakamura", "Okafor", "Patel", "Quinn", "Rossi", "Silva", "Turner", "Usman", "Vega",
    "Walsh", "Yamada", "Zimmer",
]  # fmt: skip
COMPANY_STEMS = [
    "North", "Blue", "Bright", "Iron", "Silver", "Summit", "Harbor", "Vertex", "Nimbus", "Atlas", "Cedar",
    "Quantum", "Lumen", "Orbit", "Pioneer", "Granite", "Falcon", "Meridian", "Sterling", "Crescent",
]  # fmt: skip
COMPANY_SUFFIXES = ["Labs", "Systems", "Logistics", "Health", "Capital", "Foods", "Energy", "Retail", "Media", "Works"]
CALL_KINDS = [
    ("Discovery call", ["needs", "budget", "timeline", "decision process", "current tooling"]),
    ("Product demo", ["features", "integrations", "reporting", "security", "onboarding"]),
    ("Pricing discussion", ["pricing", "discount", "budget", "contract terms", "ROI"]),
    ("Renewal", ["renewal", "usage", "expansion", "pricing", "support"]),
    ("Follow-up", ["next steps", "proposal", "stakeholders", "timeline", "objections"]),
    ("Negotiation", ["contract terms", "discount", "legal review", "procurement", "pricing"]),
    ("Onboarding check-in", ["onboarding", "training", "integrations", "support", "adoption"]),
    ("Cold call", ["intro", "pain points", "competitors", "budget", "meeting request"]),
]
CROSS_TOPICS = ["competitors", "objections", "security", "pricing", "timeline", "champion", "churn risk"]
ACTION_ITEMS = [
    "Send the pricing sheet",
    "Book a technical deep-dive with their IT lead",
    "Share two customer references in their industry",
    "Draft the proposal and send it by Friday",
    "Loop in legal for the contract review",
    "Schedule the onboarding kickoff",
    "Follow up on the security questionnaire",
    "Send the recording and summary to the champion",
    "Prepare an ROI estimate for the CFO",
]
OUTCOMES = [Call.Outcome.WON, Call.Outcome.LOST, Call.Outcome.FOLLOW_UP, Call.Outcome.NO_DECISION]
STATUS_WEIGHTS = [
    (Call.Status.COMPLETED, 0.94),
    (Call.Status.FAILED, 0.025),
    (Call.Status.ANALYZING, 0.015),
    (Call.Status.TRANSCRIBING, 0.01),
    (Call.Status.UPLOADED, 0.01),
]
COMPLETED_SHARE = next(weight for status, weight in STATUS_WEIGHTS if status == Call.Status.COMPLETED)
IN_PIPELINE = {Call.Status.UPLOADED, Call.Status.TRANSCRIBING, Call.Status.ANALYZING}
# Weekdays carry most calls; business hours peak mid-morning and mid-afternoon.
WEEKDAY_WEIGHTS = [1.0, 1.05, 1.05, 1.0, 0.85, 0.12, 0.06]
HOUR_WEIGHTS = [0, 0, 0, 0, 0, 0, 0, 0.2, 0.6, 1.0, 1.1, 0.9, 0.5, 0.8, 1.0, 1.05, 0.9, 0.6, 0.25, 0.1, 0, 0, 0, 0]


@dataclass
class SeedOptions:
    calls: int = 20_000
    orgs: int = 3
    seed: int = 42
    reps_per_org: int = 12
    days: int = 180
    transcript_share: float = 0.05
    # When set, about this many completed calls in all get a transcript (instead of transcript_share).
    transcript_count: int | None = None
    anchor: datetime | None = None  # calls end at this moment; default: today's midnight (UTC)
    batch_size: int = 20_000


@dataclass
class SeedResult:
    organizations: list[Organization] = field(default_factory=list)
    calls: int = 0
    analyses: int = 0
    transcripts: int = 0


@dataclass(frozen=True)
class Rep:
    user_id: int
    skill: float  # about -1.5 .. 1.5


@dataclass
class CallRows:
    calls: list[tuple] = field(default_factory=list)
    analyses: list[tuple] = field(default_factory=list)
    transcripts: list[tuple] = field(default_factory=list)


CALL_COLUMNS = [
    "id", "organization_id", "rep_id", "title", "customer_name", "customer_company", "direction", "started_at",
    "duration_seconds", "status", "outcome", "score", "sentiment", "talk_ratio", "recording", "failure_reason",
    "created_at", "updated_at", "delayed_until", "delay_reason",
]  # fmt: skip
ANALYSIS_COLUMNS = [
    "call_id", "summary", "sentiment", "score", "topics", "action_items", "talk_ratio",
    "longest_monologue_seconds", "question_count", "model", "created_at",
]  # fmt: skip
# search_vector is written by the table's trigger from the utterances (migration 0004_transcript_search).
TRANSCRIPT_COLUMNS = ["call_id", "provider_id", "language", "utterances", "search_vector", "created_at"]


def default_anchor() -> datetime:
    now = timezone.now()
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def split_evenly(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def reset_demo_data() -> None:
    """Delete every demo organization with its calls and the demo users. Raw
    deletes: a million rows through the ORM collector would take minutes."""
    demo_orgs = list(Organization.objects.filter(slug__startswith=DEMO_SLUG_PREFIX).values_list("id", flat=True))
    with transaction.atomic():
        if demo_orgs:
            calls = Call.objects.filter(organization_id__in=demo_orgs)
            CallAnalysis.objects.filter(call__in=calls.values("id"))._raw_delete(connection.alias)
            Transcript.objects.filter(call__in=calls.values("id"))._raw_delete(connection.alias)
            calls._raw_delete(connection.alias)
            Organization.objects.filter(id__in=demo_orgs).delete()
        User.objects.filter(username__endswith="@calliq.example").delete()


def create_people(options: SeedOptions) -> tuple[list[Organization], dict[int, list[Rep]]]:
    rng = random.Random(options.seed)
    password = make_password(DEMO_PASSWORD)
    organizations = []
    reps: dict[int, list[Rep]] = {}
    demo_user = User.objects.create(
        username=DEMO_EMAIL, email=DEMO_EMAIL, first_name="Dana", last_name="Demo", password=password
    )
    staff_user = User.objects.create(
        username=ADMIN_EMAIL,
        email=ADMIN_EMAIL,
        first_name="Ada",
        last_name="Admin",
        is_staff=True,
        is_superuser=True,
        password=make_password(ADMIN_PASSWORD),
    )
    for index in range(options.orgs):
        base_name = ORGANIZATION_NAMES[index % len(ORGANIZATION_NAMES)]
        name = base_name if index < len(ORGANIZATION_NAMES) else f"{base_name} {index // len(ORGANIZATION_NAMES) + 1}"
        org = Organization.objects.create(name=name, slug=f"{DEMO_SLUG_PREFIX}{index + 1}")
        organizations.append(org)
        Membership.objects.create(
            user=demo_user, organization=org, role=Membership.Role.MANAGER if index else Membership.Role.ADMIN
        )
        # Staff land on the same calls as the demo manager, and can switch organization.
        Membership.objects.create(user=staff_user, organization=org, role=Membership.Role.ADMIN)
        users = User.objects.bulk_create(
            User(
                username=f"rep{r + 1}.{org.slug}@calliq.example",
                email=f"rep{r + 1}.{org.slug}@calliq.example",
                first_name=rng.choice(FIRST_NAMES),
                last_name=rng.choice(LAST_NAMES),
                password=password,
            )
            for r in range(options.reps_per_org)
        )
        Membership.objects.bulk_create(
            Membership(user=user, organization=org, role=Membership.Role.REP) for user in users
        )
        reps[org.pk] = [Rep(user.pk, max(-1.5, min(1.5, rng.gauss(0, 0.6)))) for user in users]
    return organizations, reps


class CallGenerator:
    """Yields the rows of one organization's calls, `batch_size` at a time."""

    def __init__(
        self,
        *,
        organization_id: int,
        reps: list[Rep],
        options: SeedOptions,
        seed: int,
        transcripts_wanted: int | None = None,
    ) -> None:
        self.rng = random.Random(seed)
        self.organization_id = organization_id
        self.reps = reps
        self.options = options
        self.anchor = options.anchor or default_anchor()
        self.companies = [f"{s} {x}" for s in COMPANY_STEMS for x in COMPANY_SUFFIXES]
        self.day_weights = [
            WEEKDAY_WEIGHTS[(self.anchor - timedelta(days=d + 1)).weekday()] for d in range(options.days)
        ]
        self.cumulative_days = list(_cumulative(self.day_weights))
        self.cumulative_hours = list(_cumulative(HOUR_WEIGHTS))
        self.status_values = [s for s, _ in STATUS_WEIGHTS]
        self.cumulative_status = list(_cumulative([w for _, w in STATUS_WEIGHTS]))
        self.seed = seed
        self.transcripts_wanted = transcripts_wanted
        self.calls_left = 0

    def batches(self, count: int, first_id: int) -> Iterator[CallRows]:
        rows = CallRows()
        for offset in range(count):
            self.calls_left = count - offset
            self.add_call(rows, first_id + offset, offset)
            if len(rows.calls) >= self.options.batch_size:
                yield rows
                rows = CallRows()
        if rows.calls:
            yield rows

    def started_at(self) -> datetime:
        rng = self.rng
        days_back = rng.choices(range(self.options.days), cum_weights=self.cumulative_days)[0] + 1
        hour = rng.choices(range(24), cum_weights=self.cumulative_hours)[0]
        return self.anchor - timedelta(days=days_back) + timedelta(hours=hour, seconds=rng.randrange(3600))

    def add_call(self, rows: CallRows, call_id: int, ordinal: int) -> None:
        rng = self.rng
        rep = rng.choice(self.reps)
        kind, kind_topics = rng.choice(CALL_KINDS)
        company = rng.choice(self.companies)
        started_at = self.started_at()
        duration = int(min(5400, max(30, rng.lognormvariate(6.2 + 0.15 * rep.skill, 0.55))))
        status = rng.choices(self.status_values, cum_weights=self.cumulative_status)[0]
        # Only the last day's calls can still be in the pipeline; older ones finished.
        if status in IN_PIPELINE and self.anchor - started_at > timedelta(days=1):
            status = Call.Status.COMPLETED
        score = sentiment = talk_ratio = None
        outcome = ""
        failure_reason = ""
        if status == Call.Status.COMPLETED:
            length_bonus = 4 * math.log(duration / 300)
            score = int(min(100, max(0, rng.gauss(62 + 11 * rep.skill + length_bonus, 11))))
            sentiment = round(min(1.0, max(-1.0, (score - 55) / 45 + rng.gauss(0, 0.18))), 3)
            talk_ratio = round(min(0.92, max(0.12, rng.gauss(0.56 - 0.08 * rep.skill, 0.09))), 3)
            outcome = self.outcome(score)
        elif status == Call.Status.FAILED:
            failure_reason = rng.choice(
                ["Audio could not be decoded", "Recording is silent", "Transcription timed out"]
            )
        created_at = started_at + timedelta(seconds=duration + rng.randrange(30, 300))
        title = f"{kind} with {company}"
        customer = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        direction = "inbound" if rng.random() < 0.3 else "outbound"
        rows.calls.append(
            (
                call_id, self.organization_id, rep.user_id, title, customer, company, direction, started_at,
                duration, status, outcome, score, sentiment, talk_ratio, "", failure_reason, created_at, created_at,
                None, "",
            )
        )  # fmt: skip
        if status == Call.Status.COMPLETED:
            self.add_analysis(
                rows, call_id, kind, kind_topics, company, duration, score, sentiment, talk_ratio, created_at
            )
            if self.wants_transcript():
                # Its own generator per call: the calls' rows stay the same whatever share gets a transcript.
                dialogue = generate_dialogue(
                    random.Random(self.seed * 10_000_019 + ordinal),
                    duration_seconds=duration,
                    talk_ratio=talk_ratio,
                    customer=customer,
                    company=company,
                )
                rows.transcripts.append((call_id, f"sim-{call_id}", "en", json.dumps(dialogue), None, created_at))

    def wants_transcript(self) -> bool:
        """Whether this completed call gets a transcript. With a wanted number,
        selection sampling against the completed calls still expected keeps
        the total within a few of it, in one pass and without a second draw."""
        draw = self.rng.random()
        if self.transcripts_wanted is None:
            return draw < self.options.transcript_share
        if self.transcripts_wanted <= 0:
            return False
        expected_completed = max(1.0, self.calls_left * COMPLETED_SHARE)
        if draw * expected_completed < self.transcripts_wanted:
            self.transcripts_wanted -= 1
            return True
        return False

    def outcome(self, score: int) -> str:
        rng = self.rng
        win = 1 / (1 + math.exp(-(score - 68) / 7))
        draw = rng.random()
        if draw < win * 0.75:
            return Call.Outcome.WON
        if draw < win * 0.75 + (1 - win) * 0.45:
            return Call.Outcome.LOST
        return Call.Outcome.FOLLOW_UP if rng.random() < 0.65 else Call.Outcome.NO_DECISION

    def add_analysis(
        self,
        rows: CallRows,
        call_id: int,
        kind: str,
        kind_topics: list[str],
        company: str,
        duration: int,
        score: int,
        sentiment: float,
        talk_ratio: float,
        created_at: datetime,
    ) -> None:
        rng = self.rng
        topics = rng.sample(kind_topics, rng.randint(2, 3))
        if rng.random() < 0.35:
            extra = rng.choice(CROSS_TOPICS)
            if extra not in topics:
                topics.append(extra)
        actions = rng.sample(ACTION_ITEMS, rng.randint(1, 3))
        mood = "positive" if sentiment > 0.25 else "cautious" if sentiment > -0.25 else "negative"
        summary = (
            f"{kind} with {company}. The conversation covered {', '.join(topics)}. "
            f"The customer was {mood}; next step: {actions[0].lower()}."
        )
        longest = int(duration * min(0.6, max(0.05, rng.gauss(0.18 + 0.2 * talk_ratio, 0.05))))
        questions = max(0, int(rng.gauss(duration / 90 + (score - 50) / 10, 3)))
        rows.analyses.append(
            (
                call_id, summary, sentiment, score, json.dumps(topics), json.dumps(actions), talk_ratio, longest,
                questions, ANALYSIS_MODEL, created_at,
            )
        )  # fmt: skip


def _cumulative(weights: list[float]) -> Iterator[float]:
    total = 0.0
    for weight in weights:
        total += weight
        yield total


def reserve_call_ids(count: int) -> int:
    """Reserve `count` consecutive ids from the calls id sequence and return the first."""
    if count == 0:
        return 1
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT pg_get_serial_sequence('calls_call', 'id')")
            sequence = cursor.fetchone()[0]
            cursor.execute("SELECT nextval(%s)", [sequence])
            first = cursor.fetchone()[0]
            cursor.execute("SELECT setval(%s, %s)", [sequence, first + count - 1])
            return first
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM calls_call")
        return cursor.fetchone()[0] + 1


def copy_rows(table: str, columns: list[str], rows: list[tuple]) -> None:
    if not rows:
        return
    if connection.vendor == "postgresql":
        buffer = io.StringIO()
        for row in rows:
            buffer.write("\t".join(_copy_value(value) for value in row))
            buffer.write("\n")
        with (
            connection.cursor() as cursor,
            cursor.cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            copy.write(buffer.getvalue())
        return
    model = {"calls_call": Call, "calls_callanalysis": CallAnalysis, "calls_transcript": Transcript}[table]
    json_fields = {"topics", "action_items", "utterances"}
    objects = []
    for row in rows:
        values = dict(zip(columns, row, strict=True))
        for name in json_fields & values.keys():
            values[name] = json.loads(values[name])
        objects.append(model(**values))
    model.objects.bulk_create(objects, batch_size=2000)


def _copy_value(value: object) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if "\\" in text or "\t" in text or "\n" in text:
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return text


def seed_demo(options: SeedOptions, progress: Callable[[int], None] | None = None) -> SeedResult:
    """Create the demo organizations, people and calls. Not idempotent: call
    `reset_demo_data()` first to replace an earlier demo."""
    result = SeedResult()
    with transaction.atomic():
        organizations, reps = create_people(options)
        result.organizations = organizations
        first_id = reserve_call_ids(options.calls)
        wanted = split_evenly(options.transcript_count or 0, options.orgs)
        for index, (org, count) in enumerate(
            zip(organizations, split_evenly(options.calls, options.orgs), strict=True)
        ):
            generator = CallGenerator(
                organization_id=org.pk,
                reps=reps[org.pk],
                options=options,
                seed=options.seed * 1000 + index,
                transcripts_wanted=None if options.transcript_count is None else wanted[index],
            )
            for rows in generator.batches(count, first_id):
                copy_rows("calls_call", CALL_COLUMNS, rows.calls)
                copy_rows("calls_callanalysis", ANALYSIS_COLUMNS, rows.analyses)
                copy_rows("calls_transcript", TRANSCRIPT_COLUMNS, rows.transcripts)
                result.calls += len(rows.calls)
                result.analyses += len(rows.analyses)
                result.transcripts += len(rows.transcripts)
                if progress:
                    progress(len(rows.calls))
            first_id += count
            # COPY fires no signals: tell the cache and the analytics rollups.
            announce_bulk_change(organization_id=org.pk, started_between=None)
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE calls_call, calls_callanalysis, calls_transcript")
    return result
