"""Daily rollups of calls: the sums and counts every analytics figure is
derived from, so a 90-day dashboard reads days x reps x outcomes rows instead
of every call.

Grain: one `DailyRollup` row per organization, local day (settings.TIME_ZONE),
rep and outcome, and its sum over reps in `OrgDailyRollup`; one `TopicRollup`
row per organization, day, rep, outcome and topic, and its sum over reps in
`TopicDayRollup`. Every measure is an integer count or an exact numeric sum (floats are
summed as numeric(9,6)), so adding rollup rows gives exactly what aggregating
the calls gives, whatever the order. `analytics.rollups` builds them.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from calls.models import outcome_name
from calls.tenancy.models import Organization

HOURS = range(24)
SENTIMENT_BUCKETS = 5
# Exact sums of floats: each value is rounded to 6 decimals once, then summed
# as numeric, which PostgreSQL adds exactly in any order.
MEASURE_DECIMALS = 6


def hour_field(hour: int) -> str:
    return f"h{hour:02d}"


def bucket_field(index: int) -> str:
    return f"sentiment_b{index}"


def _sum_field() -> models.DecimalField:
    return models.DecimalField(max_digits=20, decimal_places=MEASURE_DECIMALS, default=0)


class Measures(models.Model):
    """Every summable measure of a set of calls."""

    calls = models.IntegerField(default=0)
    completed = models.IntegerField(default=0)
    failed = models.IntegerField(default=0)
    duration_sum = models.BigIntegerField(default=0)
    score_sum = models.BigIntegerField(default=0)
    score_count = models.IntegerField(default=0)
    sentiment_sum = _sum_field()
    sentiment_count = models.IntegerField(default=0)
    talk_ratio_sum = _sum_field()
    talk_ratio_count = models.IntegerField(default=0)

    # Sentiment distribution: <-0.6, <-0.2, <0.2, <0.6, >=0.6.
    sentiment_b0 = models.IntegerField(default=0)
    sentiment_b1 = models.IntegerField(default=0)
    sentiment_b2 = models.IntegerField(default=0)
    sentiment_b3 = models.IntegerField(default=0)
    sentiment_b4 = models.IntegerField(default=0)

    # Calls started in each local hour of the day (the heatmap): 24 plain
    # columns, because they sum in SQL on every database, unlike an array.
    h00 = models.IntegerField(default=0)
    h01 = models.IntegerField(default=0)
    h02 = models.IntegerField(default=0)
    h03 = models.IntegerField(default=0)
    h04 = models.IntegerField(default=0)
    h05 = models.IntegerField(default=0)
    h06 = models.IntegerField(default=0)
    h07 = models.IntegerField(default=0)
    h08 = models.IntegerField(default=0)
    h09 = models.IntegerField(default=0)
    h10 = models.IntegerField(default=0)
    h11 = models.IntegerField(default=0)
    h12 = models.IntegerField(default=0)
    h13 = models.IntegerField(default=0)
    h14 = models.IntegerField(default=0)
    h15 = models.IntegerField(default=0)
    h16 = models.IntegerField(default=0)
    h17 = models.IntegerField(default=0)
    h18 = models.IntegerField(default=0)
    h19 = models.IntegerField(default=0)
    h20 = models.IntegerField(default=0)
    h21 = models.IntegerField(default=0)
    h22 = models.IntegerField(default=0)
    h23 = models.IntegerField(default=0)

    class Meta:
        abstract = True


class DailyRollup(Measures):
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    # SET_NULL like Call.rep: a deleted user's calls and rollups both become "unassigned".
    rep = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    outcome = models.CharField(max_length=16, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "rep", "outcome"], name="dailyrollup_unique_org_day_rep_outcome"
            )
        ]
        indexes = [models.Index(fields=["organization", "rep", "day"], name="dailyrollup_org_rep_day")]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.day} rep={self.rep_id} {outcome_name(self.outcome)}: {self.calls}"


class OrgDailyRollup(Measures):
    """DailyRollup summed over reps: what the dashboard reads unless filtered by
    rep (about 5 rows a day instead of 60 with twelve reps)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    outcome = models.CharField(max_length=16, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "outcome"], name="orgdailyrollup_unique_org_day_outcome"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.day} {outcome_name(self.outcome)}: {self.calls}"


class TopicRollup(models.Model):
    """How many calls mentioned each topic (CallAnalysis.topics, trimmed and
    lower-cased, counted once per call)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    rep = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    outcome = models.CharField(max_length=16, blank=True)
    topic = models.TextField()
    calls = models.IntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["organization", "day", "topic"], name="topicrollup_org_day_topic"),
            # Covering (PostgreSQL): a rep's topics are read by an index-only scan.
            models.Index(
                fields=["organization", "rep", "day"],
                include=["outcome", "topic", "calls"],
                name="topicrollup_org_rep_day",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.day} {self.topic}: {self.calls}"


class TopicDayRollup(models.Model):
    """TopicRollup summed over reps: what the dashboard reads unless it is
    filtered by rep (at a million calls about 150 rows a day instead of 1,200)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    outcome = models.CharField(max_length=16, blank=True)
    topic = models.TextField()
    calls = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "day", "outcome", "topic"], name="topicdayrollup_unique_org_day_outcome_topic"
            )
        ]

    def __str__(self) -> str:
        return f"{self.organization_id} {self.day} {self.topic}: {self.calls}"
