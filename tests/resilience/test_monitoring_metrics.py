"""The profiler middleware, the per-worker buffer flushed to Redis, slow
samples, /metrics and the JSON API, and who may read them."""

from __future__ import annotations

import threading
import uuid

import pytest
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from resilience.monitoring import buffer, store
from resilience.monitoring.profiler import profile, profiled

TOKEN = "monitoring-token-for-tests-0123456789"


@pytest.fixture
def metrics(settings, db):
    """Metrics under a prefix of this test's own, with whatever earlier tests
    buffered sent elsewhere first."""
    buffer.flush()
    buffer._buffer.names_read_at = 0.0  # names known under the old prefix
    settings.CALLIQ_METRICS_PREFIX = f"test-{uuid.uuid4().hex[:8]}:metrics"
    settings.CALLIQ_MONITORING_TOKEN = TOKEN
    return store.client()


def samples(text: str) -> dict[tuple, float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            found[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return found


def test_requests_are_counted_by_route_template_never_by_raw_path(client, metrics, member, call):
    client.force_login(member.user)
    for _ in range(3):
        assert client.get(reverse("calls:detail", args=[call.pk])).status_code == 200
    client.get("/no/such/page/12345")
    assert buffer.flush()
    windows = store.window(metrics, minutes=5)
    assert windows["calls/<int:call_id>/"].requests == 3
    assert windows["__unmatched__"].requests == 1
    assert not any(str(call.pk) in name for name in windows)
    assert windows["calls/<int:call_id>/"].p50 > 0


def test_every_metrics_key_has_a_ttl(client, metrics, member, settings):
    settings.CALLIQ_SLOW_THRESHOLDS_MS = {"calls/": 0}
    client.force_login(member.user)
    client.get(reverse("calls:list"))
    with profile("test.op"):
        pass
    assert buffer.flush()
    keys = list(metrics.scan_iter(f"{settings.CALLIQ_METRICS_PREFIX}:*"))
    assert len(keys) > 5
    assert all(metrics.ttl(key) > 0 for key in keys)


def test_names_beyond_the_cap_are_counted_as_other(metrics, settings):
    settings.CALLIQ_METRICS_MAX_NAMES = 3
    for i in range(6):
        with profile(f"op.{i}"):
            pass
    assert buffer.flush()
    names = set(store.window(metrics, minutes=5, kind="op"))
    assert len(names - {"__other__"}) == 3
    assert "__other__" in names


def test_database_time_and_queries_are_measured_per_request(client, metrics, member, call):
    client.force_login(member.user)
    client.get(reverse("calls:detail", args=[call.pk]))
    assert buffer.flush()
    counters, _, _ = store.totals(metrics)
    assert counters["db_queries|calls/<int:call_id>/"] >= 1
    assert counters["db_us|calls/<int:call_id>/"] > 0


def test_a_slow_request_keeps_its_marks_and_request_id_but_no_query_values(client, metrics, member, settings, caplog):
    settings.CALLIQ_SLOW_THRESHOLDS_MS = {"calls/": 0}
    client.force_login(member.user)
    response = client.get(reverse("calls:list"), {"q": "secret-customer-name", "outcome": "won"})
    request_id = response["X-Request-ID"]
    assert buffer.flush()
    found = store.slow_samples(metrics)
    assert found[0]["request_id"] == request_id
    assert found[0]["params"] == ["outcome", "q"]
    assert "secret-customer-name" not in str(found)
    assert any(request_id in record.getMessage() for record in caplog.records)


def test_profiled_operations_have_percentiles_and_marks(metrics, settings):
    settings.CALLIQ_SLOW_THRESHOLDS_MS = {"analytics.compute": 0}

    @profiled("analytics.compute")
    def compute():
        with profile("analytics.step") as p:
            p.mark("rollups")

    for _ in range(5):
        compute()
    assert buffer.flush()
    ops = store.window(metrics, minutes=5, kind="op")
    assert ops["analytics.compute"].requests == 5
    assert ops["analytics.step"].requests == 5
    slow = store.slow_samples(metrics, kind="op")
    assert {s["name"] for s in slow} == {"analytics.compute"}


def test_server_timing_goes_to_staff_and_not_to_others(client, member, staff_user, metrics):
    client.force_login(member.user)
    response = client.get(reverse("calls:list"))
    assert "Server-Timing" not in response
    assert response["X-Request-ID"]
    client.force_login(staff_user)
    timing = client.get(reverse("monitoring:routes"))["Server-Timing"]
    assert timing.startswith("total;dur=")
    assert "db;dur=" in timing
    assert len(timing) <= 1024
    assert timing.count(",") < 10


def test_an_incoming_request_id_is_kept_only_if_it_looks_like_one(client, metrics):
    ok = client.get(reverse("monitoring:health"), headers={"X-Request-ID": "lb-abcdef123456"})
    assert ok["X-Request-ID"] == "lb-abcdef123456"
    forged = client.get(reverse("monitoring:health"), headers={"X-Request-ID": "x\r\nSet-Cookie: a=b"})
    assert forged["X-Request-ID"] != "x\r\nSet-Cookie: a=b"
    assert len(forged["X-Request-ID"]) == 16


def test_an_incoming_request_id_with_a_trailing_newline_is_replaced(client, metrics):
    # `$` matches before a final newline; the id must match as a whole.
    response = client.get(reverse("monitoring:health"), headers={"X-Request-ID": "lb-abcdef123456\n"})
    assert response.status_code == 200
    assert response["X-Request-ID"] != "lb-abcdef123456\n"
    assert len(response["X-Request-ID"]) == 16


def test_metrics_count_requests_for_prometheus(client, metrics, staff_user):
    for _ in range(4):
        client.get(reverse("monitoring:health"))
    assert buffer.flush()
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    found = samples(response.content.decode())
    assert (
        found[("calliq_http_requests_total", (("method", "GET"), ("route", "monitoring/health"), ("status", "2xx")))]
        == 4
    )
    assert found[("calliq_http_request_duration_seconds_count", (("route", "monitoring/health"),))] == 4
    assert ("calliq_breaker_state", (("service", "openai"), ("state", "closed"))) in found
    assert ("calliq_calls_started_today_finished", ()) in found


# A wrong Bearer on /metrics gets the view's 403 JSON, not a 401: the monitoring
# token middleware leaves a non-matching credential alone, and the API-token
# middleware (which answers 401 for an unknown token, as resilience/monitoring/
# access.py's docstring says) only looks at /api/ paths. /monitoring/ pages are
# staff pages: the token is ignored there and the admin login redirect (302) follows.
@pytest.mark.parametrize(
    ("url", "authorization", "status"),
    [
        ("/metrics", None, 403),
        ("/metrics", "Bearer wrong-token", 403),
        ("/metrics", f"Bearer {TOKEN}", 200),
        ("/api/v1/monitoring/metrics", None, 403),
        ("/api/v1/monitoring/metrics", f"Bearer {TOKEN}", 200),
        ("/api/v1/monitoring/metrics", "Bearer wrong-token", 401),
        ("/api/v1/calls/", f"Bearer {TOKEN}", 401),  # the monitoring token is no API token
        ("/monitoring/routes/", f"Bearer {TOKEN}", 302),  # nor a staff session: to the admin login
    ],
)
def test_only_the_monitoring_token_opens_the_metrics_routes(client, metrics, url, authorization, status):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(url, headers=headers)
    assert response.status_code == status
    if status == 403:
        assert response["Content-Type"] == "application/json"


def test_with_no_monitoring_token_configured_no_bearer_opens_metrics(client, metrics, settings):
    settings.CALLIQ_MONITORING_TOKEN = ""
    # An empty configured token matches nothing: the view refuses (403, as for any wrong Bearer).
    assert client.get("/metrics", headers={"Authorization": "Bearer "}).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer x"}).status_code == 403


def test_members_may_not_read_metrics_and_staff_may(client, metrics, member, staff_user):
    client.force_login(member.user)
    assert client.get("/metrics").status_code == 403
    assert client.get("/api/v1/monitoring/metrics").status_code == 403
    client.force_login(staff_user)
    assert client.get("/metrics").status_code == 200
    body = client.get("/api/v1/monitoring/metrics").json()
    assert set(body) >= {"routes", "slow", "alerts", "business"}


def test_a_staff_members_personal_api_token_does_not_open_the_metrics(client, metrics, org):
    from calls.tenancy.models import ApiToken, Membership
    from tests import factories

    staff = factories.make_user(is_staff=True, is_superuser=True)
    Membership.objects.create(user=staff, organization=org)
    _token, raw = ApiToken.issue(user=staff, organization=org, name="script")
    headers = {"Authorization": f"Bearer {raw}"}
    assert client.get("/api/v1/calls", headers=headers).status_code == 200  # a working token
    assert client.get("/api/v1/monitoring/metrics", headers=headers).status_code == 403


@pytest.mark.parametrize("name", ["routes", "slow", "alerts", "business"])
def test_monitoring_pages_are_for_staff_only(client, metrics, member, staff_user, name):
    url = reverse(f"monitoring:{name}")
    assert client.get(url).status_code == 302
    client.force_login(member.user)
    assert client.get(url).status_code == 302
    client.force_login(staff_user)
    page = client.get(url)
    assert page.status_code == 200
    assert "<script>" not in page.text
    partial = client.get(url, headers={"HX-Request": "true"})
    assert partial.text.lstrip().startswith('<div id="mon-body"')


def test_routes_page_shows_percentiles_and_a_chart(client, metrics, staff_user):
    for _ in range(3):
        client.get(reverse("monitoring:health"))
    assert buffer.flush()
    client.force_login(staff_user)
    page = client.get(reverse("monitoring:routes"))
    assert "monitoring/health" in page.text
    assert "<svg" in page.text
    assert "<polyline" in page.text
    assert "Table view" in page.text


def test_no_redis_call_happens_on_the_request_path(client, metrics, member, monkeypatch):
    """Recording a request only touches the buffer: with the metrics' Redis
    client refused to this thread, requests still succeed and nothing here asked
    for it (the flusher thread may; it is not on the request path)."""
    calls = []
    real_client = store.client

    def watched():
        if threading.current_thread() is threading.main_thread():
            calls.append(threading.current_thread().name)
            raise AssertionError("Redis used on the request path")
        return real_client()

    monkeypatch.setattr(store, "client", watched)
    client.force_login(member.user)
    assert client.get(reverse("calls:list")).status_code == 200
    assert calls == []


def test_celery_task_outcomes_and_queue_depth_reach_metrics(client, metrics, staff_user, settings):
    from resilience.monitoring.tasks import evaluate_alerts_task

    evaluate_alerts_task.apply()
    assert buffer.flush()
    conn = metrics
    conn.rpush(settings.CELERY_TASK_DEFAULT_QUEUE, "a", "b", "c")
    client.force_login(staff_user)
    found = samples(client.get("/metrics").content.decode())
    task = (("outcome", "success"), ("task", "resilience.monitoring.evaluate_alerts"))
    assert found[("calliq_celery_tasks_total", task)] == 1
    assert found[("calliq_celery_queue_depth", (("queue", settings.CELERY_TASK_DEFAULT_QUEUE),))] == 3


def test_cache_reads_and_hits_are_measured_per_request(client, metrics, member):
    client.force_login(member.user)
    client.get(reverse("calls:list"))
    client.get(reverse("calls:list"))  # served from the cache
    assert buffer.flush()
    counters, _, _ = store.totals(metrics)
    assert counters["cache_reads|calls/"] >= 2
    assert counters["cache_hits|calls/"] >= 1
    assert counters["cache_us|calls/"] > 0


def test_time_in_a_provider_is_measured_through_its_breaker(metrics):
    from resilience.breaker.core import breaker
    from resilience.tracing import Trace, tracing

    with tracing(Trace()) as trace:
        assert breaker("openai").call(lambda: "answer") == "answer"
    assert trace.provider_calls == 1
    assert trace.provider_seconds > 0
    assert buffer.flush()
    counters, _, _ = store.totals(metrics)
    assert counters["provider_calls|openai"] == 1
