"""Alert rules on a fake clock: Normal → Pending → Firing → (keep firing) →
Resolved, one notification each way; a breaker opening notifies once; the
webhook speaks Slack's JSON; staff see a banner while an alert fires."""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.urls import reverse

from resilience.breaker.core import breaker
from resilience.models import AlertIncident, AlertRule
from resilience.monitoring import notify
from resilience.monitoring.alerts import evaluate_rules

T0 = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def sent():
    received: list[notify.Notification] = []
    notify.register_notifier("test", received.append)
    yield received
    notify.unregister_notifier("test")


@pytest.fixture
def rule(db):
    AlertRule.objects.update(enabled=False)  # the shipped rules read live metrics; this test drives its own
    return AlertRule.objects.create(
        name="Errors",
        metric=AlertRule.Metric.ERROR_RATE,
        comparison=">",
        threshold=0.05,
        recovery_threshold=0.02,
        for_seconds=60,
        keep_firing_for_seconds=120,
    )


def run(rule: AlertRule, seconds: int, value: float | None) -> str:
    evaluate_rules(now=T0 + dt.timedelta(seconds=seconds), read=lambda r: value if r.pk == rule.pk else None)
    rule.refresh_from_db()
    return rule.state


def test_a_rule_goes_pending_fires_keeps_firing_and_resolves_with_one_notification_each_way(rule, sent):
    assert run(rule, 0, 0.01) == "normal"
    assert run(rule, 30, 0.10) == "pending"
    assert run(rule, 60, 0.10) == "pending"  # true for 30 s of the 60 needed
    assert sent == []
    assert run(rule, 90, 0.12) == "firing"
    assert [n.kind for n in sent] == ["firing"]
    assert run(rule, 120, 0.03) == "firing"  # below the threshold, above the recovery threshold
    assert run(rule, 150, 0.01) == "firing"  # recovered, but keep_firing_for holds it
    assert run(rule, 200, 0.01) == "firing"
    assert run(rule, 240, 0.01) == "resolved"  # 120 s since the last breach at 120
    assert run(rule, 270, 0.01) == "resolved"
    assert [n.kind for n in sent] == ["firing", "resolved"]
    incident = AlertIncident.objects.get(rule=rule)
    assert incident.started_at == T0 + dt.timedelta(seconds=90)
    assert incident.resolved_at == T0 + dt.timedelta(seconds=240)
    assert incident.peak_value == 0.12


def test_a_below_threshold_rule_keeps_the_lowest_value_as_its_peak(rule, sent):
    rule.comparison, rule.threshold, rule.recovery_threshold = "<", 0.5, 0.6
    rule.save()
    assert run(rule, 0, 0.4) == "pending"
    assert run(rule, 60, 0.3) == "firing"
    assert run(rule, 90, 0.1) == "firing"
    assert run(rule, 120, 0.45) == "firing"
    assert AlertIncident.objects.get(rule=rule).peak_value == 0.1


def test_a_blip_shorter_than_for_never_notifies(rule, sent):
    assert run(rule, 0, 0.5) == "pending"
    assert run(rule, 30, 0.0) == "normal"
    assert run(rule, 60, None) == "normal"  # no data is not a breach
    assert sent == []
    assert not AlertIncident.objects.exists()


def test_a_second_incident_after_resolution_notifies_again(rule, sent):
    rule.for_seconds = 0
    rule.keep_firing_for_seconds = 0
    rule.save()
    for second, value in [(0, 0.5), (30, 0.5), (60, 0.0), (90, 0.5), (120, 0.0)]:
        run(rule, second, value)
    assert [n.kind for n in sent] == ["firing", "resolved", "firing", "resolved"]
    assert AlertIncident.objects.filter(rule=rule).count() == 2


def test_evaluating_again_at_the_same_moment_sends_nothing_twice(rule, sent):
    rule.for_seconds = 0
    rule.save()
    run(rule, 0, 0.5)
    run(rule, 0, 0.5)
    run(rule, 10, 0.5)
    assert [n.kind for n in sent] == ["firing"]


def test_a_breaker_opening_notifies_once_at_the_next_evaluation(db, sent):
    breaker("openai").force("open", actor="test")
    evaluate_rules()
    evaluate_rules()
    assert [(n.rule, n.kind) for n in sent] == [("Circuit breaker open", "firing")]
    breaker("openai").force("reset", actor="test")
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=61)
    evaluate_rules(now=later)
    assert [(n.rule, n.kind) for n in sent] == [
        ("Circuit breaker open", "firing"),
        ("Circuit breaker open", "resolved"),
    ]


class _Hook(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


def test_the_webhook_receives_slack_compatible_json(rule, settings):
    server = HTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received.clear()
    settings.CALLIQ_ALERT_WEBHOOK_URL = f"http://127.0.0.1:{server.server_port}/hook"
    try:
        rule.for_seconds = 0
        rule.save()
        run(rule, 0, 0.5)
    finally:
        server.shutdown()
        server.server_close()
    assert len(_Hook.received) == 1
    assert _Hook.received[0]["text"].startswith("[CallIQ] FIRING: Errors")
    assert _Hook.received[0]["attachments"][0]["color"] == "danger"


def test_alert_email_goes_through_the_resend_client(rule, settings, sim):
    settings.CALLIQ_ALERT_EMAILS = ["ops@calliq.example"]
    rule.for_seconds = 0
    rule.save()
    run(rule, 0, 0.5)
    emails = sim.state()["emails_sent"]
    assert [e["key"] for e in emails] == [f"alert-{AlertIncident.objects.get().pk}-firing"]
    assert emails[0]["to"] == ["ops@calliq.example"]
    assert "FIRING: Errors" in emails[0]["subject"]


def test_a_failing_channel_does_not_stop_the_others(rule, sent, settings):
    settings.CALLIQ_ALERT_WEBHOOK_URL = "http://127.0.0.1:9/unreachable"
    rule.for_seconds = 0
    rule.save()
    run(rule, 0, 0.5)
    assert [n.kind for n in sent] == ["firing"]


def test_staff_see_a_banner_while_an_alert_fires_and_members_do_not(client, rule, staff_user, member):
    rule.for_seconds = 0
    rule.save()
    run(rule, 0, 0.5)
    client.force_login(staff_user)
    assert "Alerts firing" in client.get(reverse("monitoring:alerts")).text
    client.force_login(member.user)
    assert "Alerts firing" not in client.get(reverse("calls:list")).text


def test_default_rules_are_shipped(db):
    assert set(AlertRule.objects.values_list("metric", flat=True)) == {
        "error_rate",
        "latency_p95_ms",
        "breakers_open",
        "queue_depth",
        "cache_hit_rate",
    }
