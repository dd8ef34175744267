"""The call domain: organizations and their members, API tokens, calls,
transcripts and analyses. Reused queries live here as QuerySet methods."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol, Self

from django.conf import settings
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import BooleanField, Expression, F, Q, Value
from django.urls import reverse
from django.utils import timezone

import calls.billing.models  # noqa: F401  (billing's models belong to this app: importing them registers them)
from calls.tenancy.models import Organization


class CallFilterLike(Protocol):
    def to_q(self) -> Q: ...


SEARCH_COLUMNS = ("title", "customer_name", "customer_company")


def escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class SearchContains(Expression):
    """`(title || ' ' || customer_name || ' ' || customer_company) ILIKE '%text%'`.

    Written out rather than built from Concat + icontains because the trigram
    index (migration 0002_dashboard_search) is on exactly this expression, and
    Django's icontains would wrap it in UPPER() where the index cannot serve it."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, text: str) -> None:
        super().__init__()
        self.columns = [F(name) for name in SEARCH_COLUMNS]
        self.pattern = Value(f"%{escape_like(text)}%")

    def get_source_expressions(self) -> list[Any]:
        return [*self.columns, self.pattern]

    def set_source_expressions(self, exprs: list[Any]) -> None:
        *self.columns, self.pattern = exprs

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        parts, params = [], []
        for column in self.columns:
            sql, column_params = compiler.compile(column)
            parts.append(sql)
            params.extend(column_params)
        pattern_sql, pattern_params = compiler.compile(self.pattern)
        joined = " || ' ' || ".join(parts)
        if connection.vendor == "postgresql":
            return f"(({joined}) ILIKE {pattern_sql})", [*params, *pattern_params]
        # SQLite's LIKE ignores ASCII case already; the embedded default has no index for this.
        return f"(({joined}) LIKE {pattern_sql} ESCAPE '\\')", [*params, *pattern_params]


class CallQuerySet(models.QuerySet):
    def for_org(self, organization: Organization) -> Self:
        return self.filter(organization=organization)

    def completed(self) -> Self:
        return self.filter(status=Call.Status.COMPLETED)

    def started_between(self, start: datetime, end: datetime) -> Self:
        return self.filter(started_at__gte=start, started_at__lt=end)

    def filtered(self, filters: CallFilterLike) -> Self:
        """Apply the dashboard's filters (calls.filters.CallFilters)."""
        return self.filter(filters.to_q())

    def for_table(self) -> Self:
        """The columns the dashboard shows, with the rep's name joined in the same
        query (an annotation rather than select_related, so the rows query can be a UNION)."""
        return self.annotate(rep_first_name=F("rep__first_name"), rep_last_name=F("rep__last_name"))


class CallStatus(models.TextChoices):
    UPLOADED = "uploaded", "Uploaded"
    TRANSCRIBING = "transcribing", "Transcribing"
    ANALYZING = "analyzing", "Analyzing"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"


class CallDirection(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"


class CallOutcome(models.TextChoices):
    UNKNOWN = "", "Unknown"
    WON = "won", "Won"
    LOST = "lost", "Lost"
    FOLLOW_UP = "follow_up", "Follow-up"
    NO_DECISION = "no_decision", "No decision"


# The unknown outcome is stored as "" (so a blank form field means it) and
# named "unknown" wherever it travels as a word: URLs, the API, analytics.
OUTCOME_UNKNOWN = "unknown"


def outcome_name(value: str) -> str:
    """The stored outcome as it is named outside the database: "" → "unknown"."""
    return value or OUTCOME_UNKNOWN


def outcome_value(name: str) -> str:
    """The inverse of outcome_name: "unknown" → ""."""
    return "" if name == OUTCOME_UNKNOWN else name


# Every outcome by name with its label, unknown last: the filters' choices and analytics' series.
NAMED_OUTCOMES: list[tuple[str, str]] = [
    *((value, label) for value, label in CallOutcome.choices if value),
    (OUTCOME_UNKNOWN, str(CallOutcome.UNKNOWN.label)),
]


# Sentiment runs from -1 to 1. The neutral band is [-NEUTRAL_SENTIMENT,
# NEUTRAL_SENTIMENT): below it a call reads as negative, at or above it as
# positive. The dashboard's filter, the sentiment words on the pages and the
# analytics distribution's middle bucket all use these edges.
NEUTRAL_SENTIMENT = 0.2
SENTIMENTS = ("positive", "neutral", "negative")


def sentiment_band(value: float) -> str:
    if value >= NEUTRAL_SENTIMENT:
        return "positive"
    if value < -NEUTRAL_SENTIMENT:
        return "negative"
    return "neutral"


def sentiment_band_q(band: str, field: str = "sentiment") -> Q:
    """The rows whose `field` falls in `band` (one of SENTIMENTS)."""
    if band == "positive":
        return Q(**{f"{field}__gte": NEUTRAL_SENTIMENT})
    if band == "negative":
        return Q(**{f"{field}__lt": -NEUTRAL_SENTIMENT})
    if band == "neutral":
        return Q(**{f"{field}__gte": -NEUTRAL_SENTIMENT, f"{field}__lt": NEUTRAL_SENTIMENT})
    raise ValueError(band)


class Call(models.Model):
    Status = CallStatus
    Direction = CallDirection
    Outcome = CallOutcome

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="calls")
    rep = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="calls"
    )
    title = models.CharField(max_length=200)
    customer_name = models.CharField(max_length=120, blank=True)
    customer_company = models.CharField(max_length=120, blank=True)
    direction = models.CharField(max_length=8, choices=Direction.choices, default=Direction.OUTBOUND)
    started_at = models.DateTimeField()
    duration_seconds = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.UNKNOWN, blank=True)
    score = models.PositiveSmallIntegerField(null=True, blank=True, help_text="0-100, set by the analysis.")
    sentiment = models.FloatField(null=True, blank=True, help_text="-1 (negative) to 1 (positive).")
    talk_ratio = models.FloatField(null=True, blank=True, help_text="Share of talk time by the rep, 0-1.")
    recording = models.FileField(upload_to="recordings/%Y/%m/", blank=True)
    failure_reason = models.CharField(max_length=300, blank=True)
    # Set while a provider's breaker is open: the pipeline step is queued for this time.
    delayed_until = models.DateTimeField(null=True, blank=True)
    delay_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = CallQuerySet.as_manager()

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [
            # Keyset pagination on (sort column, id) per organization, both directions.
            models.Index(fields=["organization", "started_at", "id"], name="call_org_started_id"),
            models.Index(fields=["organization", "duration_seconds", "id"], name="call_org_duration_id"),
            models.Index(fields=["organization", "score", "id"], name="call_org_score_id"),
            models.Index(fields=["organization", "sentiment", "id"], name="call_org_sentiment_id"),
            # A status or outcome filter under a score or sentiment sort: those
            # filters decide whether a call has a score at all (only completed
            # calls are analysed), so on the indexes above one of the two
            # segments (scored, unscored) holds no match and the walk would read
            # the whole index to learn that. With the filter's column first,
            # each segment is a range of its own, empty or not.
            models.Index(fields=["organization", "status", "score", "id"], name="call_org_status_score_id"),
            models.Index(fields=["organization", "status", "sentiment", "id"], name="call_org_status_sentiment_id"),
            models.Index(fields=["organization", "outcome", "score", "id"], name="call_org_outcome_score_id"),
            models.Index(fields=["organization", "outcome", "sentiment", "id"], name="call_org_outcome_sentiment_id"),
            # Analytics: per-rep aggregations over a date range.
            models.Index(fields=["organization", "rep", "started_at"], name="call_org_rep_started"),
            models.Index(fields=["organization", "status", "started_at"], name="call_org_status_started"),
            # Billing: minutes of the calls uploaded in a period (calls/billing/usage.py);
            # on PostgreSQL it also carries duration_seconds (migration 0005_billing_paddle).
            models.Index(fields=["organization", "created_at"], name="call_org_created"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(score__isnull=True) | Q(score__gte=0, score__lte=100), name="call_score_0_100"
            ),
            models.CheckConstraint(
                condition=Q(sentiment__isnull=True) | Q(sentiment__gte=-1, sentiment__lte=1),
                name="call_sentiment_range",
            ),
            models.CheckConstraint(
                condition=Q(talk_ratio__isnull=True) | Q(talk_ratio__gte=0, talk_ratio__lte=1),
                name="call_talk_ratio_range",
            ),
            models.CheckConstraint(condition=Q(status__in=CallStatus.values), name="call_status_valid"),
            models.CheckConstraint(condition=Q(outcome__in=CallOutcome.values), name="call_outcome_valid"),
        ]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("calls:detail", args=[self.pk])

    @property
    def is_delayed(self) -> bool:
        return self.delayed_until is not None


class Transcript(models.Model):
    """What the speech-to-text provider returned. `utterances` is a list of
    {"speaker": "A"|"B"…, "start_ms": int, "end_ms": int, "text": str} in time order.

    On PostgreSQL `search_vector` is the utterances' text as a tsvector in the
    text search configuration of `language` (calls.search), kept current by a
    trigger on every insert and every update of the text or the language
    (migration 0004_transcript_search): never written from Python."""

    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="transcript")
    provider_id = models.CharField(max_length=100, blank=True)
    language = models.CharField(max_length=16, default="en", help_text="ISO 639-1 code, e.g. en, de, pt-BR.")
    utterances = models.JSONField(default=list)
    search_vector = SearchVectorField(null=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"Transcript of {self.call_id}"

    @property
    def text(self) -> str:
        return "\n".join(f"{u['speaker']}: {u['text']}" for u in self.utterances)


class CallAnalysis(models.Model):
    call = models.OneToOneField(Call, on_delete=models.CASCADE, related_name="analysis")
    summary = models.TextField()
    sentiment = models.FloatField()
    score = models.PositiveSmallIntegerField()
    topics = models.JSONField(default=list)
    action_items = models.JSONField(default=list)
    talk_ratio = models.FloatField()
    longest_monologue_seconds = models.PositiveIntegerField(default=0)
    question_count = models.PositiveIntegerField(default=0)
    model = models.CharField(max_length=100)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "call analyses"
        constraints = [
            models.CheckConstraint(condition=Q(score__gte=0, score__lte=100), name="analysis_score_0_100"),
            models.CheckConstraint(condition=Q(sentiment__gte=-1, sentiment__lte=1), name="analysis_sentiment_range"),
            models.CheckConstraint(condition=Q(talk_ratio__gte=0, talk_ratio__lte=1), name="analysis_talk_ratio_range"),
        ]

    def __str__(self) -> str:
        return f"Analysis of {self.call_id}"


class CallSelection(models.Model):
    """One person's selection of calls in one organization; it survives paging,
    reloads and sign-outs. Either explicit (its items are the selected calls) or
    "all matching" a stored filter (its items are then the calls unticked since),
    so selecting a million calls stores one row, not a million ids."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="call_selections")
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="call_selections")
    all_matching = models.BooleanField(default=False)
    # Text, not a bounded CharField: any filter the form accepts must fit (the
    # search text alone may be 200 characters, percent-encoded to 1,800).
    filter_query = models.TextField(blank=True, help_text="The filter's canonical query string (all_matching).")
    matching_count = models.PositiveIntegerField(null=True, blank=True, help_text="Matches when it was selected.")
    matching_estimated = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="call_selection_unique_user_org")]

    def __str__(self) -> str:
        return f"Selection of {self.user} in {self.organization}"


class SelectionItem(models.Model):
    """A call ticked in an explicit selection, or unticked in an "all matching" one."""

    selection = models.ForeignKey(CallSelection, on_delete=models.CASCADE, related_name="items")
    call = models.ForeignKey(Call, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["selection", "call"], name="selection_item_unique_call")]

    def __str__(self) -> str:
        return f"{self.call_id} in selection {self.selection_id}"


class OutboundEmailQuerySet(models.QuerySet):
    def pending(self) -> Self:
        return self.filter(status=OutboundEmail.Status.PENDING)

    def due(self, now: datetime | None = None) -> Self:
        return self.pending().filter(next_attempt_at__lte=now or timezone.now())


class OutboundEmail(models.Model):
    """The email outbox: every email is stored here before it is sent, so an
    outage of Resend delays mail and loses none. `idempotency_key` is sent as
    Resend's Idempotency-Key, so a retried send never mails twice."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="outbound_emails")
    call = models.ForeignKey(Call, on_delete=models.SET_NULL, null=True, blank=True, related_name="emails")
    to_email = models.EmailField()
    subject = models.CharField(max_length=200)
    text = models.TextField()
    html = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=100, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    provider_id = models.CharField(max_length=100, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    sent_at = models.DateTimeField(null=True, blank=True)

    objects = OutboundEmailQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "next_attempt_at"], name="outbound_email_due")]

    def __str__(self) -> str:
        return f"{self.subject} → {self.to_email} ({self.status})"


# Webhooks out live in their own package, registered with this app like calls.tenancy.models.
from calls.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint, WebhookEvent  # noqa: E402, F401
