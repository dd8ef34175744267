"""Every figure of the comprehensive analytics checked against independent,
hand-written SQL over the same calls (PostgreSQL's own AVG, COUNT and jsonb
functions), on a few hundred random calls in two organizations."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import connection

from analytics.report import AnalyticsParams, comprehensive_analytics
from calls.events import announce_bulk_change
from calls.models import Call, CallAnalysis
from tests import factories
from tests.analytics.raw_reference import raw_comprehensive_analytics

FIRST = date(2026, 5, 1)
LAST = date(2026, 5, 14)
PREVIOUS_FIRST = date(2026, 4, 17)
LOCAL = "(started_at AT TIME ZONE 'UTC')"  # settings.TIME_ZONE in the tests
TOPICS = ["pricing", "Demo", "security ", "timeline", "roi"]


def sql(query: str, params: list) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return cursor.fetchall()


@pytest.fixture
def dataset(org, other_org, member, django_capture_on_commit_callbacks):
    rng = random.Random(20260501)
    reps = [member.user, factories.make_membership(org).user, factories.make_membership(org).user, None]
    other_rep = factories.make_membership(other_org).user
    calls = []
    for target, target_reps in ((org, reps), (other_org, [other_rep])):
        for _ in range(400 if target == org else 150):
            status = rng.choice(["completed"] * 8 + ["failed", "uploaded"])
            done = status == "completed"
            calls.append(
                Call(
                    organization=target,
                    rep=rng.choice(target_reps),
                    title="Call",
                    started_at=datetime(2026, 4, 15, tzinfo=UTC) + timedelta(minutes=rng.randrange(32 * 24 * 60)),
                    duration_seconds=rng.randrange(30, 3600),
                    status=status,
                    outcome=rng.choice(["won", "lost", "follow_up", "no_decision"]) if done else "",
                    score=rng.randrange(0, 101) if done else None,
                    sentiment=round(rng.uniform(-1, 1), 3) if done else None,
                    talk_ratio=round(rng.uniform(0.1, 0.9), 3) if done else None,
                )
            )
    with django_capture_on_commit_callbacks(execute=True):
        created = Call.objects.bulk_create(calls)
        CallAnalysis.objects.bulk_create(
            CallAnalysis(
                call=call,
                summary="-",
                sentiment=call.sentiment,
                score=call.score,
                talk_ratio=call.talk_ratio,
                topics=rng.sample(TOPICS, rng.randrange(0, 4)),
                model="test",
            )
            for call in created
            if call.status == "completed"
        )
        for target in (org, other_org):
            announce_bulk_change(organization_id=target.pk, started_between=None)
    return created


def where(org, first: date, last: date) -> tuple[str, list]:
    return (
        "organization_id = %s AND started_at >= %s AND started_at < %s",
        [
            org.pk,
            datetime(first.year, first.month, first.day, tzinfo=UTC),
            datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1),
        ],
    )


def sql_kpis(org, first: date, last: date) -> dict:
    clause, params = where(org, first, last)
    row = sql(
        f"""SELECT COUNT(*), COALESCE(SUM(duration_seconds), 0), AVG(duration_seconds), AVG(score), AVG(sentiment),
                   COUNT(*) FILTER (WHERE outcome = 'won')::float
                       / NULLIF(COUNT(*) FILTER (WHERE outcome IN ('won', 'lost')), 0),
                   COUNT(*) FILTER (WHERE status = 'failed')::float
                       / NULLIF(COUNT(*) FILTER (WHERE status IN ('completed', 'failed')), 0)
            FROM calls_call WHERE {clause}""",
        params,
    )[0]
    keys = [
        "calls",
        "talk_time_seconds",
        "average_duration_seconds",
        "average_score",
        "average_sentiment",
        "win_rate",
        "failure_rate",
    ]
    return {k: (None if v is None else float(v)) for k, v in zip(keys, row, strict=True)}


def approx(value):
    return None if value is None else pytest.approx(value, abs=1e-4)


def test_kpis_and_their_previous_period_match_hand_written_sql(org, dataset):
    data = comprehensive_analytics(org, AnalyticsParams(first=FIRST, last=LAST))
    current, previous = sql_kpis(org, FIRST, LAST), sql_kpis(org, PREVIOUS_FIRST, FIRST - timedelta(days=1))
    assert current["calls"] > 100
    for kpi in data["kpis"]:
        assert kpi["value"] == approx(current[kpi["key"]]), kpi["key"]
        assert kpi["previous"] == approx(previous[kpi["key"]]), kpi["key"]


def test_calls_per_day_and_daily_averages_match_hand_written_sql(org, dataset):
    data = comprehensive_analytics(org, AnalyticsParams(first=FIRST, last=LAST))
    clause, params = where(org, FIRST, LAST)
    per_day = {
        (day.isoformat(), outcome or "unknown"): n
        for day, outcome, n in sql(
            f"SELECT {LOCAL}::date, outcome, COUNT(*) FROM calls_call WHERE {clause} GROUP BY 1, 2",
            params,
        )
    }
    for row in data["calls_per_day"]:
        for outcome in ["won", "lost", "follow_up", "no_decision", "unknown"]:
            assert row[outcome] == per_day.get((row["day"], outcome), 0)
    averages = {
        day.isoformat(): (score, sentiment)
        for day, score, sentiment in sql(
            f"SELECT {LOCAL}::date, AVG(score), AVG(sentiment) FROM calls_call WHERE {clause} GROUP BY 1",
            params,
        )
    }
    for score_row, sentiment_row in zip(data["score_trend"], data["sentiment_trend"], strict=True):
        score, sentiment = averages.get(score_row["day"], (None, None))
        assert score_row["average"] == approx(None if score is None else float(score))
        assert sentiment_row["average"] == approx(sentiment)


def test_leaderboard_matches_hand_written_sql(org, dataset):
    data = comprehensive_analytics(org, AnalyticsParams(first=FIRST, last=LAST))
    clause, params = where(org, FIRST, LAST)
    expected = {
        rep_id: (n, float(score), talk, won / (won + lost) if won + lost else None)
        for rep_id, n, score, talk, won, lost in sql(
            f"""SELECT rep_id, COUNT(*), AVG(score), AVG(talk_ratio),
                       COUNT(*) FILTER (WHERE outcome = 'won'), COUNT(*) FILTER (WHERE outcome = 'lost')
                FROM calls_call WHERE {clause} GROUP BY rep_id""",
            params,
        )
    }
    assert {row["rep_id"] for row in data["leaderboard"]} == set(expected)
    for row in data["leaderboard"]:
        n, score, talk, win_rate = expected[row["rep_id"]]
        assert (row["calls"], row["average_score"], row["talk_ratio"], row["win_rate"]) == (
            n, approx(score), approx(talk), approx(win_rate),
        )  # fmt: skip


def test_sentiment_distribution_and_heatmap_match_hand_written_sql(org, dataset):
    data = comprehensive_analytics(org, AnalyticsParams(first=FIRST, last=LAST))
    clause, params = where(org, FIRST, LAST)
    buckets = dict(
        sql(
            f"""SELECT CASE WHEN sentiment < -0.6 THEN 0 WHEN sentiment < -0.2 THEN 1 WHEN sentiment < 0.2 THEN 2
                            WHEN sentiment < 0.6 THEN 3 ELSE 4 END, COUNT(*)
                FROM calls_call WHERE {clause} AND sentiment IS NOT NULL GROUP BY 1""",
            params,
        )
    )
    assert [b["calls"] for b in data["sentiment_distribution"]] == [buckets.get(i, 0) for i in range(5)]
    cells = {
        (int(dow) - 1, int(hour)): n
        for dow, hour, n in sql(
            f"""SELECT EXTRACT(ISODOW FROM {LOCAL}), EXTRACT(HOUR FROM {LOCAL}),
                       COUNT(*) FROM calls_call WHERE {clause} GROUP BY 1, 2""",
            params,
        )
    }
    assert data["heatmap"]["calls"] == [[cells.get((d, h), 0) for h in range(24)] for d in range(7)]


def test_top_topics_and_their_previous_counts_match_hand_written_sql(org, dataset):
    data = comprehensive_analytics(org, AnalyticsParams(first=FIRST, last=LAST))

    def topic_counts(first: date, last: date) -> dict[str, int]:
        clause, params = where(org, first, last)
        return dict(
            sql(
                f"""SELECT topic, COUNT(DISTINCT c.id) FROM calls_call c
                    JOIN calls_callanalysis a ON a.call_id = c.id,
                    LATERAL (SELECT lower(trim(value)) AS topic FROM jsonb_array_elements_text(a.topics)) t
                    WHERE {clause.replace("organization_id", "c.organization_id")} GROUP BY topic""",
                params,
            )
        )

    now, before = topic_counts(FIRST, LAST), topic_counts(PREVIOUS_FIRST, FIRST - timedelta(days=1))
    assert {t["topic"]: (t["calls"], t["previous_calls"]) for t in data["topics"]} == {
        topic: (n, before.get(topic, 0)) for topic, n in now.items()
    }
    assert sum(data["topics"][0]["daily"]) == data["topics"][0]["calls"]


def test_filters_match_hand_written_sql_and_the_raw_path(org, member, dataset):
    params = AnalyticsParams(first=FIRST, last=LAST, rep_id=member.user.pk, outcome="won")
    data = comprehensive_analytics(org, params)
    clause, sql_params = where(org, FIRST, LAST)
    count, score = sql(
        f"SELECT COUNT(*), AVG(score) FROM calls_call WHERE {clause} AND rep_id = %s AND outcome = 'won'",
        [*sql_params, member.user.pk],
    )[0]
    assert data["kpis"][0]["value"] == count
    assert data["kpis"][3]["value"] == approx(float(score))
    assert data == raw_comprehensive_analytics(org, params)
