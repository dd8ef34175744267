"""The demo-data command: deterministic per seed, realistic and correlated."""

import statistics

import pytest
from django.contrib.auth import authenticate
from django.core.management import CommandError, call_command

from calls.demo import DEMO_EMAIL, DEMO_PASSWORD
from calls.models import Call, CallAnalysis, Transcript
from calls.tenancy.models import Membership, Organization

ANCHOR = "2026-06-30"


def snapshot() -> list[tuple]:
    ordering = ("organization__slug", "started_at", "title", "customer_name", "duration_seconds")
    return list(
        Call.objects.order_by(*ordering).values_list(
            "organization__slug", "rep__username", "title", "customer_name", "customer_company", "direction",
            "started_at", "duration_seconds", "status", "outcome", "score", "sentiment", "talk_ratio",
        )
    )  # fmt: skip


def seed(*extra: str) -> None:
    call_command("seed_demo", "--calls", "600", "--orgs", "2", "--anchor", ANCHOR, "--verbosity", "0", *extra)


def test_the_same_seed_gives_the_same_calls(db):
    seed("--seed", "7")
    first = snapshot()
    seed("--seed", "7", "--reset")
    assert snapshot() == first
    seed("--seed", "8", "--reset")
    assert snapshot() != first


def test_it_creates_the_organizations_reps_calls_and_a_working_demo_login(db):
    seed()
    assert Organization.objects.filter(slug__startswith="demo-").count() == 2
    assert Call.objects.count() == 600
    assert Membership.objects.filter(role=Membership.Role.REP).count() == 24
    assert authenticate(username=DEMO_EMAIL, password=DEMO_PASSWORD) is not None
    assert Membership.objects.filter(user__username=DEMO_EMAIL).count() == 2


def test_completed_calls_have_analyses_and_some_have_alternating_transcripts(db):
    call_command("seed_demo", "--calls", "400", "--orgs", "1", "--transcripts", "0.5", "--verbosity", "0")
    completed = Call.objects.completed()
    assert CallAnalysis.objects.count() == completed.count()
    assert not completed.filter(score__isnull=True).exists()
    assert not Call.objects.exclude(status=Call.Status.COMPLETED).filter(score__isnull=False).exists()
    transcript = Transcript.objects.first()
    speakers = [u["speaker"] for u in transcript.utterances]
    assert speakers[:4] == ["A", "B", "A", "B"]
    assert all(u["start_ms"] < u["end_ms"] for u in transcript.utterances)
    assert 0.3 < Transcript.objects.count() / completed.count() < 0.7


def test_sentiment_tracks_score_and_high_scores_win_more(db):
    call_command("seed_demo", "--calls", "3000", "--orgs", "1", "--verbosity", "0")
    rows = list(Call.objects.completed().values_list("score", "sentiment", "outcome"))
    scores = [r[0] for r in rows]
    sentiments = [r[1] for r in rows]
    assert statistics.correlation(scores, sentiments) > 0.6
    high = [r[2] for r in rows if r[0] >= 75]
    low = [r[2] for r in rows if r[0] < 55]
    assert high.count("won") / len(high) > 2 * low.count("won") / len(low)


def test_it_refuses_to_seed_twice_without_reset(db):
    seed()
    with pytest.raises(CommandError, match="--reset"):
        seed()


def test_if_empty_leaves_an_existing_database_alone(db):
    seed()
    call_command("seed_demo", "--calls", "50", "--if-empty", "--verbosity", "0")
    assert Call.objects.count() == 600


def test_bad_arguments_are_refused_with_a_message(db):
    with pytest.raises(CommandError, match="--orgs"):
        call_command("seed_demo", "--orgs", "0", "--verbosity", "0")
    with pytest.raises(CommandError, match="--anchor"):
        call_command("seed_demo", "--anchor", "yesterday", "--verbosity", "0")


def test_copy_columns_cover_every_column_of_the_models():
    # COPY leaves out nothing silently: a new NOT NULL column must be seeded too.
    from calls.demo import ANALYSIS_COLUMNS, CALL_COLUMNS, TRANSCRIPT_COLUMNS

    def columns(model):
        return {f.column for f in model._meta.concrete_fields} - {"id"}

    assert set(CALL_COLUMNS) - {"id"} == columns(Call)
    assert set(ANALYSIS_COLUMNS) == columns(CallAnalysis)
    assert set(TRANSCRIPT_COLUMNS) == columns(Transcript)
