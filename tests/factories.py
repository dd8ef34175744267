"""Test data builders: plain functions with keyword overrides."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta

from django.contrib.auth.models import User
from django.utils import timezone

from calls.models import Call, CallAnalysis, Transcript
from calls.tenancy.models import Membership, Organization

_sequence = itertools.count(1)

PASSWORD = "correct-horse-battery"


def make_organization(**overrides: object) -> Organization:
    n = next(_sequence)
    fields = {"name": f"Org {n}", "slug": f"org-{n}"} | overrides
    return Organization.objects.create(**fields)


def make_user(**overrides: object) -> User:
    n = next(_sequence)
    fields = {
        "username": f"user{n}@example.com",
        "email": f"user{n}@example.com",
        "first_name": "User",
        "last_name": str(n),
    }
    fields |= overrides
    password = fields.pop("password", PASSWORD)
    return User.objects.create_user(password=password, **fields)


def make_membership(
    organization: Organization | None = None, user: User | None = None, role: str = Membership.Role.REP
) -> Membership:
    return Membership.objects.create(
        organization=organization or make_organization(), user=user or make_user(), role=role
    )


def make_call(organization: Organization, **overrides: object) -> Call:
    n = next(_sequence)
    fields: dict[str, object] = {
        "organization": organization,
        "title": f"Discovery call {n}",
        "customer_name": f"Customer {n}",
        "customer_company": f"Company {n}",
        "started_at": timezone.now() - timedelta(hours=n),
        "duration_seconds": 600,
        "status": Call.Status.COMPLETED,
        "outcome": Call.Outcome.WON,
        "score": 70,
        "sentiment": 0.4,
        "talk_ratio": 0.5,
    } | overrides
    return Call.objects.create(**fields)


def make_transcript(call: Call, utterances: list[dict] | None = None) -> Transcript:
    utterances = utterances or [
        {"speaker": "A", "start_ms": 0, "end_ms": 4000, "text": "Thanks for taking the time today."},
        {"speaker": "B", "start_ms": 4200, "end_ms": 9000, "text": "Happy to. What does pricing look like?"},
    ]
    return Transcript.objects.create(call=call, utterances=utterances)


def make_analysis(call: Call, **overrides: object) -> CallAnalysis:
    fields = {
        "call": call,
        "summary": "The customer asked about pricing and agreed to a follow-up demo.",
        "sentiment": 0.4,
        "score": 70,
        "topics": ["pricing", "demo"],
        "action_items": ["Send the pricing sheet"],
        "talk_ratio": 0.5,
        "longest_monologue_seconds": 42,
        "question_count": 5,
        "model": "gpt-4o-mini",
    } | overrides
    return CallAnalysis.objects.create(**fields)


def at(year: int, month: int, day: int, hour: int = 12) -> datetime:
    return datetime(year, month, day, hour, tzinfo=timezone.get_current_timezone())
