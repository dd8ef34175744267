"""Resilience models: the circuit breaker policy of each external service
(edited in the admin, read by every process within seconds) and the history
of breaker transitions (bounded: see BreakerEvent.RETENTION)."""

from __future__ import annotations

from typing import Self

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from resilience.breaker_policy import Policy


class BreakerPolicy(models.Model):
    """The row behind resilience.breaker.Policy; its defaults are the Policy's, defined there once."""

    class Forced(models.TextChoices):
        NONE = "", "Not forced"
        OPEN = "open", "Forced open"
        CLOSED = "closed", "Forced closed (breaker disabled)"

    service = models.SlugField(max_length=40, unique=True, help_text='The name code uses: breaker("openai").')
    failure_threshold = models.PositiveSmallIntegerField(
        default=Policy.failure_threshold,
        validators=[MinValueValidator(1)],
        help_text="Consecutive failures that open the breaker.",
    )
    error_rate_threshold = models.PositiveSmallIntegerField(
        default=Policy.error_rate_threshold,
        validators=[MinValueValidator(1), MaxValueValidator(100)],
        help_text="Percent of failed calls in the window that opens the breaker.",
    )
    window_seconds = models.PositiveIntegerField(
        default=Policy.window_seconds, validators=[MinValueValidator(1)], help_text="Rolling window for the error rate."
    )
    minimum_calls = models.PositiveIntegerField(
        default=Policy.minimum_calls,
        validators=[MinValueValidator(1)],
        help_text="Calls in the window before the error rate counts.",
    )
    open_seconds = models.FloatField(
        default=Policy.open_seconds,
        validators=[MinValueValidator(0.01)],
        help_text="How long the breaker stays open before a trial.",
    )
    open_backoff_multiplier = models.FloatField(
        default=Policy.open_backoff_multiplier,
        validators=[MinValueValidator(1.0)],
        help_text="Open duration grows by this factor after each failed trial (1 = no growth).",
    )
    max_open_seconds = models.FloatField(
        default=Policy.max_open_seconds,
        validators=[MinValueValidator(0.01)],
        help_text="Cap on the grown open duration.",
    )
    half_open_max_calls = models.PositiveSmallIntegerField(
        default=Policy.half_open_max_calls,
        validators=[MinValueValidator(1)],
        help_text="Trial calls allowed at once in HALF_OPEN, across all processes; that many successes close it.",
    )
    slow_call_seconds = models.FloatField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0.001)],
        help_text="A call slower than this counts as a failure (empty: never).",
    )
    call_timeout_seconds = models.FloatField(
        default=Policy.call_timeout_seconds,
        validators=[MinValueValidator(0.01)],
        help_text="HTTP timeout of the client; also frees the permit of a trial that never reports back.",
    )
    count_timeouts = models.BooleanField(default=Policy.count_timeouts)
    count_connection_errors = models.BooleanField(default=Policy.count_connection_errors)
    count_server_errors = models.BooleanField(default=Policy.count_server_errors, help_text="5xx answers.")
    count_rate_limits = models.BooleanField(default=Policy.count_rate_limits, help_text="429 answers.")
    forced_state = models.CharField(
        max_length=8,
        choices=Forced.choices,
        default=Forced.NONE,
        blank=True,
        editable=False,
        help_text="Set by the force open / force closed / reset actions.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["service"]
        verbose_name = "circuit breaker"
        verbose_name_plural = "circuit breakers"
        constraints = [
            models.CheckConstraint(
                condition=Q(error_rate_threshold__gte=1, error_rate_threshold__lte=100), name="breaker_rate_1_100"
            ),
            models.CheckConstraint(condition=Q(failure_threshold__gte=1), name="breaker_threshold_positive"),
            models.CheckConstraint(condition=Q(half_open_max_calls__gte=1), name="breaker_half_open_positive"),
            models.CheckConstraint(condition=Q(open_backoff_multiplier__gte=1), name="breaker_backoff_at_least_1"),
            models.CheckConstraint(condition=Q(forced_state__in=["", "open", "closed"]), name="breaker_forced_valid"),
        ]

    def __str__(self) -> str:
        return self.service


class BreakerEventQuerySet(models.QuerySet):
    def for_service(self, service: str) -> Self:
        return self.filter(service=service)

    def prune(self, service: str, keep: int) -> int:
        """Delete all but the newest `keep` events of a service; returns how many went."""
        cutoff = self.for_service(service).order_by("-at", "-id").values_list("id", flat=True)[keep : keep + 1]
        boundary = list(cutoff)
        if not boundary:
            return 0
        deleted, _ = self.for_service(service).filter(id__lte=boundary[0]).delete()
        return deleted


class BreakerEvent(models.Model):
    """One transition of one breaker, recorded once however many processes saw
    it: `event_id` is the Redis stream id written by the Lua script that made
    the change (or a per-process id for a local breaker while Redis is down)."""

    RETENTION = 500  # newest events kept per service

    service = models.SlugField(max_length=40)
    event_id = models.CharField(max_length=80)
    at = models.DateTimeField(default=timezone.now)
    from_state = models.CharField(max_length=16)
    to_state = models.CharField(max_length=16)
    reason = models.CharField(max_length=300)
    consecutive_failures = models.PositiveIntegerField(default=0)
    window_calls = models.PositiveIntegerField(default=0)
    window_failures = models.PositiveIntegerField(default=0)
    shared = models.BooleanField(default=True, help_text="False: a per-process breaker while Redis was unreachable.")

    objects = BreakerEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["service", "at"], name="breaker_event_service_at")]
        constraints = [models.UniqueConstraint(fields=["service", "event_id"], name="breaker_event_once")]

    def __str__(self) -> str:
        return f"{self.service}: {self.from_state} → {self.to_state}"


class ErrorGroupQuerySet(models.QuerySet):
    def unresolved(self) -> Self:
        return self.filter(state__in=[ErrorGroup.State.UNRESOLVED, ErrorGroup.State.REGRESSED])

    def with_organization_count(self) -> Self:
        return self.annotate(organization_count=models.Count("organizations"))

    def mark(self, state: str) -> int:
        """Resolve, ignore or reopen (unresolved); returns how many groups changed.
        A resolved group that recurs becomes a regression (errors.store_event)."""
        resolved_at = timezone.now() if state == ErrorGroup.State.RESOLVED else None
        return self.exclude(state=state).update(state=state, resolved_at=resolved_at)


class ErrorGroup(models.Model):
    """Every occurrence of one bug (one fingerprint: see
    resilience/monitoring/errors.py), counted, with the last few scrubbed
    samples. Written by resilience.monitoring.errors.store_event only."""

    SAMPLES_KEPT = 5

    class Kind(models.TextChoices):
        EXCEPTION = "exception", "Exception"
        CSP = "csp", "CSP violation"

    class State(models.TextChoices):
        UNRESOLVED = "unresolved", "Unresolved"
        RESOLVED = "resolved", "Resolved"
        IGNORED = "ignored", "Ignored"
        REGRESSED = "regressed", "Regression"

    fingerprint = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the fingerprint parts.")
    fingerprint_parts = models.JSONField(default=list)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.EXCEPTION)
    title = models.CharField(max_length=300)
    culprit = models.CharField(max_length=300, blank=True)
    state = models.CharField(max_length=16, choices=State.choices, default=State.UNRESOLVED)
    count = models.PositiveBigIntegerField(default=0)
    first_seen = models.DateTimeField()
    last_seen = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    samples = models.JSONField(default=list, help_text="The newest scrubbed samples, newest first.")

    objects = ErrorGroupQuerySet.as_manager()

    class Meta:
        ordering = ["-last_seen", "-id"]
        indexes = [models.Index(fields=["state", "last_seen"], name="error_group_state_seen")]
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["unresolved", "resolved", "ignored", "regressed"]),
                name="error_group_state_valid",
            )
        ]

    def __str__(self) -> str:
        return self.title


class ErrorGroupOrganization(models.Model):
    """An organization an error group has hit (an integer id read from the
    request: resilience knows no Organization model)."""

    group = models.ForeignKey(ErrorGroup, on_delete=models.CASCADE, related_name="organizations")
    organization_id = models.BigIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["group", "organization_id"], name="error_group_organization_once")
        ]

    def __str__(self) -> str:
        return f"organization {self.organization_id}"


class CacheControl(models.Model):
    """No table: it only carries the permission the cache admin's actions need
    (resilience/cache/admin.py), as breaker actions need the breaker's."""

    class Meta:
        managed = False
        default_permissions = ()
        permissions = [("control_cache", "Can invalidate, flush and warm the cache")]

    def __str__(self) -> str:
        return "cache control"


class AlertRule(models.Model):
    """One alert: `metric comparison threshold`, true for `for_seconds`, fires;
    it resolves once the metric is back past `recovery_threshold` (or the
    threshold) for `keep_firing_for_seconds`. Evaluated by Celery beat
    (resilience.monitoring.alerts.evaluate_rules); state lives on the row."""

    class Metric(models.TextChoices):
        ERROR_RATE = "error_rate", "Share of requests answered 5xx (0–1)"
        LATENCY_P95 = "latency_p95_ms", "p95 request latency (ms)"
        BREAKERS_OPEN = "breakers_open", "Circuit breakers open"
        QUEUE_DEPTH = "queue_depth", "Celery tasks waiting"
        CACHE_HIT_RATE = "cache_hit_rate", "Cache hit rate since the last evaluation (0–1)"

    class Comparison(models.TextChoices):
        GT = ">", "above"
        GE = ">=", "at or above"
        LT = "<", "below"
        LE = "<=", "at or below"

    class State(models.TextChoices):
        NORMAL = "normal", "Normal"
        PENDING = "pending", "Pending"
        FIRING = "firing", "Firing"
        RESOLVED = "resolved", "Resolved"

    name = models.CharField(max_length=80, unique=True)
    metric = models.CharField(max_length=20, choices=Metric.choices)
    comparison = models.CharField(max_length=2, choices=Comparison.choices, default=Comparison.GT)
    threshold = models.FloatField()
    recovery_threshold = models.FloatField(
        null=True, blank=True, help_text="Resolved only once past this value (empty: the threshold itself)."
    )
    for_seconds = models.PositiveIntegerField(default=0, help_text="How long the condition must hold before firing.")
    keep_firing_for_seconds = models.PositiveIntegerField(
        default=0, help_text="How long it keeps firing after the condition stopped holding."
    )
    window_minutes = models.PositiveSmallIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(120)], help_text="For rates and percentiles."
    )
    min_samples = models.PositiveIntegerField(
        default=20, help_text="Rates and percentiles over fewer requests or lookups count as no data."
    )
    enabled = models.BooleanField(default=True)
    state = models.CharField(max_length=10, choices=State.choices, default=State.NORMAL, editable=False)
    state_since = models.DateTimeField(null=True, blank=True, editable=False)
    last_breach_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_value = models.FloatField(null=True, blank=True, editable=False)
    last_evaluated_at = models.DateTimeField(null=True, blank=True, editable=False)
    memory = models.JSONField(default=dict, blank=True, editable=False, help_text="Counters from the last evaluation.")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(condition=Q(comparison__in=[">", ">=", "<", "<="]), name="alert_comparison_valid"),
        ]

    def __str__(self) -> str:
        return f"{self.name}: {self.metric} {self.comparison} {self.threshold:g}"


class AlertIncident(models.Model):
    """One firing episode of a rule: one notification when it fires, one when
    it resolves (each claimed by a conditional UPDATE, so sent once)."""

    rule = models.ForeignKey(AlertRule, on_delete=models.CASCADE, related_name="incidents")
    started_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    value = models.FloatField(null=True, blank=True, help_text="The value when it fired.")
    peak_value = models.FloatField(null=True, blank=True)
    firing_notified_at = models.DateTimeField(null=True, blank=True)
    resolved_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            # At most one open incident per rule: the de-duplication is in the schema.
            models.UniqueConstraint(
                fields=["rule"], condition=Q(resolved_at__isnull=True), name="alert_one_open_incident"
            )
        ]

    def __str__(self) -> str:
        return f"{self.rule.name} since {self.started_at:%Y-%m-%d %H:%M}"
