"""CSP violation reports (report-uri and the Reporting API) are ingested into
the error tracker's groups: one group per directive and blocked origin."""

from __future__ import annotations

import json

import pytest
from django.test import override_settings
from django.urls import reverse

from resilience.models import ErrorGroup
from resilience.monitoring import csp

URL = "/monitoring/csp-report"


def legacy_report(blocked: str, document: str = "https://testserver/calls/12/?token=DOCSECRETQX7") -> bytes:
    return json.dumps(
        {
            "csp-report": {
                "document-uri": document,
                "referrer": "",
                "violated-directive": "script-src-elem",
                "effective-directive": "script-src-elem",
                "original-policy": "default-src 'self'; report-uri /monitoring/csp-report",
                "blocked-uri": blocked,
                "status-code": 200,
                "source-file": "https://testserver/static/js/app.js",
                "line-number": 12,
            }
        }
    ).encode()


def reporting_api(*violations: tuple[str, str]) -> bytes:
    return json.dumps(
        [
            {
                "type": "csp-violation",
                "age": 10,
                "url": "https://testserver/analytics/",
                "user_agent": "Mozilla/5.0",
                "body": {
                    "documentURL": "https://testserver/analytics/?email=someone@example.org",
                    "effectiveDirective": directive,
                    "blockedURL": blocked,
                    "disposition": "enforce",
                    "sample": "SAMPLESECRETQX7 inline text",
                    "statusCode": 200,
                },
            }
            for directive, blocked in violations
        ]
    ).encode()


def test_the_policy_names_the_report_endpoints(client, member):
    client.force_login(member.user)
    response = client.get(reverse("calls:list"))
    assert "report-uri /monitoring/csp-report" in response["Content-Security-Policy"]
    assert "report-to csp" in response["Content-Security-Policy"]
    assert response["Reporting-Endpoints"] == 'csp="http://testserver/monitoring/csp-report"'
    assert reverse("monitoring:csp-report") == URL


def test_reports_group_by_directive_and_blocked_origin_whatever_the_path(client, db):
    for path in ("/a.js", "/b.js?token=BLOCKEDSECRETQX7", "/c/d.js"):
        response = client.post(URL, legacy_report(f"https://evil.example{path}"), content_type="application/csp-report")
        assert response.status_code == 204
    client.post(URL, legacy_report("https://cdn.example/x.js"), content_type="application/csp-report")
    client.post(
        URL,
        reporting_api(("script-src-elem", "https://evil.example/z.js"), ("style-src-attr", "inline")),
        content_type="application/reports+json",
    )
    groups = {g.title: g for g in ErrorGroup.objects.all()}
    assert set(groups) == {
        "CSP script-src-elem blocked https://evil.example",
        "CSP script-src-elem blocked https://cdn.example",
        "CSP style-src-attr blocked inline",
    }
    assert groups["CSP script-src-elem blocked https://evil.example"].count == 4
    assert {g.kind for g in groups.values()} == {ErrorGroup.Kind.CSP}
    stored = json.dumps([g.samples for g in groups.values()])
    for secret in ("DOCSECRETQX7", "BLOCKEDSECRETQX7", "SAMPLESECRETQX7", "someone@example.org"):
        assert secret not in stored
    assert groups["CSP script-src-elem blocked https://cdn.example"].samples[0]["document"] == "/calls/12/"


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b"not json", "application/csp-report", 400),
        (b'{"csp-report": {"effective-directive": "<script>"}}', "application/csp-report", 400),
        (b'{"csp-report": {"effective-directive": "made-up-src"}}', "application/csp-report", 400),
        (b'{"hello": 1}', "application/csp-report", 400),
        (b'[{"type": "deprecation", "body": {}}]', "application/reports+json", 400),
        (b"[" + b'{"type": "csp-violation"},' * 30 + b"{}]", "application/reports+json", 400),
        (b'{"csp-report": {}}', "text/plain", 415),
        (b'{"csp-report": {"x": "' + b"a" * 70_000 + b'"}}', "application/csp-report", 413),
    ],
)
def test_malformed_oversized_and_mistyped_reports_get_a_4xx_and_store_nothing(client, db, body, content_type, status):
    response = client.post(URL, body, content_type=content_type)
    assert response.status_code == status
    assert "error" in response.json()
    assert not ErrorGroup.objects.exists()


@override_settings(CALLIQ_CSP_REPORTS_PER_MINUTE=3)
def test_reports_are_rate_limited_per_client(client, db):
    statuses = [
        client.post(URL, legacy_report("https://evil.example/a.js"), content_type="application/csp-report").status_code
        for _ in range(5)
    ]
    assert statuses == [204, 204, 204, 429, 429]
    assert ErrorGroup.objects.get().count == 3
    other = client.post(
        URL, legacy_report("https://evil.example/a.js"), content_type="application/csp-report", REMOTE_ADDR="10.9.8.7"
    )
    assert other.status_code == 204


def test_past_the_cap_new_origins_fold_into_one_group_per_directive(client, db, monkeypatch):
    monkeypatch.setattr(csp, "MAX_CSP_GROUPS", 3)
    for n in range(6):
        body = legacy_report(f"https://attacker{n}.example/a.js")
        response = client.post(URL, body, content_type="application/csp-report", REMOTE_ADDR=f"10.0.0.{n}")
        assert response.status_code == 204
    client.post(URL, legacy_report("https://attacker0.example/b.js"), content_type="application/csp-report")
    titles = dict(ErrorGroup.objects.values_list("title", "count"))
    assert titles == {
        "CSP script-src-elem blocked https://attacker0.example": 2,
        "CSP script-src-elem blocked https://attacker1.example": 1,
        "CSP script-src-elem blocked https://attacker2.example": 1,
        "CSP script-src-elem blocked other": 3,
    }


def test_a_get_is_refused(client, db):
    assert client.get(URL).status_code == 405


def test_with_redis_down_the_rate_limit_fails_open_and_reports_are_still_stored(client, db, private_redis):
    caches = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": private_redis.url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    private_redis.kill()
    with override_settings(CACHES=caches, CALLIQ_CSP_REPORTS_PER_MINUTE=1):
        for _ in range(3):
            response = client.post(
                URL, legacy_report("https://evil.example/a.js"), content_type="application/csp-report"
            )
            assert response.status_code == 204
    assert ErrorGroup.objects.get().count == 3
