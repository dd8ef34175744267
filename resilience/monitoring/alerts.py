"""Alert evaluation: Normal → Pending → Firing → Resolved, run by Celery beat.

`step` is the pure state machine (testable on a fake clock); `evaluate_rules`
reads each enabled rule's metric, locks its row, applies `step`, and opens or
closes the rule's incident. Notifications go out after the commit, and each
incident's firing and resolution are claimed with a conditional UPDATE, so
two evaluations running at once (two beat schedulers, a retry) still send
one notification each way. An open incident is unique per rule in the schema.

Semantics follow Prometheus: the condition must hold for `for_seconds` before
firing; once firing, the rule resolves after the value has been past the
recovery threshold (hysteresis; default the threshold) for
`keep_firing_for_seconds`. No data (too few requests) counts as "not past the
threshold"."""

from __future__ import annotations

import datetime as dt
import logging
import operator
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from resilience.models import AlertIncident, AlertRule
from resilience.monitoring import notify

logger = logging.getLogger("calliq.monitoring.alerts")

COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
State = AlertRule.State


@dataclass(frozen=True)
class Decision:
    state: str
    state_since: dt.datetime | None
    last_breach_at: dt.datetime | None
    fired: bool = False
    resolved: bool = False


def step(rule: AlertRule, value: float | None, now: dt.datetime) -> Decision:
    """The rule's next state given the value read at `now` (no side effects)."""
    compare = COMPARE[rule.comparison]
    breaching = value is not None and compare(value, rule.threshold)
    state, since, last_breach = rule.state, rule.state_since, rule.last_breach_at
    if state in (State.NORMAL, State.RESOLVED):
        if not breaching:
            return Decision(state, since, last_breach)
        if rule.for_seconds == 0:
            return Decision(State.FIRING, now, now, fired=True)
        return Decision(State.PENDING, now, now)
    if state == State.PENDING:
        if not breaching:
            return Decision(State.NORMAL, now, last_breach)
        if since is not None and (now - since).total_seconds() >= rule.for_seconds:
            return Decision(State.FIRING, now, now, fired=True)
        return Decision(State.PENDING, since, now)
    # FIRING: still past the recovery threshold keeps it firing.
    recovery = rule.recovery_threshold if rule.recovery_threshold is not None else rule.threshold
    if value is not None and compare(value, recovery):
        return Decision(State.FIRING, since, now)
    quiet_since = last_breach or since or now
    if (now - quiet_since).total_seconds() >= rule.keep_firing_for_seconds:
        return Decision(State.RESOLVED, now, last_breach, resolved=True)
    return Decision(State.FIRING, since, last_breach)


def evaluate_rules(
    *, now: dt.datetime | None = None, read: Callable[[AlertRule], float | None] | None = None
) -> list[tuple[AlertIncident, str]]:
    """Evaluate every enabled rule once; returns the notifications sent as
    (incident, "firing" | "resolved"). `now` and `read` let tests drive a fake clock."""
    from resilience.monitoring.readings import read_metric

    now = now or timezone.now()
    read = read or read_metric
    to_send: list[tuple[int, str]] = []
    for rule_id in AlertRule.objects.filter(enabled=True).values_list("id", flat=True):
        with transaction.atomic():
            rule = AlertRule.objects.select_for_update().get(pk=rule_id)
            try:
                value = read(rule)
            except Exception:
                logger.exception("alert %s: metric %s unreadable; treated as no data", rule.name, rule.metric)
                value = None
            decision = step(rule, value, now)
            rule.state, rule.state_since, rule.last_breach_at = (
                decision.state,
                decision.state_since,
                decision.last_breach_at,
            )
            rule.last_value, rule.last_evaluated_at = value, now
            rule.save(
                update_fields=["state", "state_since", "last_breach_at", "last_value", "last_evaluated_at", "memory"]
            )
            incident = AlertIncident.objects.filter(rule=rule, resolved_at__isnull=True).first()
            if decision.fired and incident is None:
                incident = AlertIncident.objects.create(rule=rule, started_at=now, value=value, peak_value=value)
                to_send.append((incident.pk, "firing"))
            elif incident is not None and decision.resolved:
                incident.resolved_at = now
                incident.save(update_fields=["resolved_at"])
                to_send.append((incident.pk, "resolved"))
            elif (
                incident is not None
                and value is not None
                # The worst value in the rule's own direction: the lowest for a "<" rule.
                and (incident.peak_value is None or COMPARE[rule.comparison](value, incident.peak_value))
            ):
                incident.peak_value = value
                incident.save(update_fields=["peak_value"])
    return [sent for pk, kind in to_send if (sent := _claim_and_send(pk, kind, now)) is not None]


def _claim_and_send(incident_id: int, kind: str, now: dt.datetime) -> tuple[AlertIncident, str] | None:
    field = "firing_notified_at" if kind == "firing" else "resolved_notified_at"
    claimed = AlertIncident.objects.filter(pk=incident_id, **{f"{field}__isnull": True}).update(**{field: now})
    if not claimed:
        return None
    incident = AlertIncident.objects.select_related("rule").get(pk=incident_id)
    notify.send(notify.Notification.of(incident, kind))
    return incident, kind


def firing_incidents() -> list[AlertIncident]:
    return list(AlertIncident.objects.filter(resolved_at__isnull=True).select_related("rule").order_by("started_at"))
