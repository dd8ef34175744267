"""Real-user timing beacons: same-origin only, at most 4 KB, a strict
schema, a per-client rate limit; p75 per route template for staff."""

from __future__ import annotations

import json
import math
import random
import re
from collections import Counter
from html import unescape as html_unescape
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders
from django.test import override_settings
from django.urls import reverse

from resilience.monitoring import rum

URL = "/monitoring/rum/beacon"
SAME_SITE = {"Sec-Fetch-Site": "same-origin"}


def beacon(route: str = "calls/", **metrics: float) -> bytes:
    metrics = metrics or {"LCP": 1200.5, "FCP": 800, "TTFB": 120, "CLS": 0.05, "INP": 64}
    return json.dumps({"route": route, "metrics": [{"name": k, "value": v} for k, v in metrics.items()]}).encode()


def send(client, body: bytes, headers: dict | None = SAME_SITE, **extra):
    return client.post(URL, body, content_type="text/plain;charset=UTF-8", headers=headers or {}, **extra)


def test_pages_render_their_route_template_for_the_beacon_never_the_path(client, member, call):
    client.force_login(member.user)
    html = client.get(reverse("calls:detail", args=[call.pk])).text
    route = html_unescape(re.search(r'name="calliq-rum" data-route="([^"]+)"', html)[1])
    assert route == "calls/<int:call_id>/"
    assert str(call.pk) not in route
    assert route in rum.known_routes()
    assert 'type="module" src="/static/js/rum.js"' in html
    assert 'data-web-vitals="/static/vendor/web-vitals/web-vitals.js"' in html
    assert send(client, beacon(route)).status_code == 204


def test_the_web_vitals_module_is_collected_from_the_npm_package_not_the_repo():
    found = Path(finders.find("vendor/web-vitals/web-vitals.js"))
    assert found.parts[-4:] == ("node_modules", "web-vitals", "dist", "web-vitals.js")
    assert "onLCP" in found.read_text()
    installed = json.loads((settings.BASE_DIR / "node_modules" / "web-vitals" / "package.json").read_text())
    pinned = json.loads((settings.BASE_DIR / "package.json").read_text())["dependencies"]["web-vitals"]
    assert installed["version"] == pinned


def test_a_valid_beacon_is_counted_into_p75_per_route(client, db):
    assert send(client, beacon("calls/", LCP=1000, CLS=0.1)).status_code == 204
    assert send(client, beacon("calls/", LCP=3000)).status_code == 204
    rows = {row.route: row for row in rum.p75_by_route("hour")}
    assert rows["calls/"].samples == {"LCP": 2, "CLS": 1}
    assert rows["calls/"].p75["LCP"] == pytest.approx(3000, rel=0.01)
    assert rows["calls/"].p75["CLS"] == pytest.approx(0.1, rel=0.01)
    day = {row.route: row for row in rum.p75_by_route("day")}
    assert day["calls/"].samples["LCP"] == 2


def test_an_origin_equal_to_the_host_is_accepted_when_fetch_metadata_is_absent(client, db):
    assert send(client, beacon(), headers={"Origin": "http://testserver"}).status_code == 204


@pytest.mark.parametrize(
    "headers",
    [
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Sec-Fetch-Site": "none"},
        {"Origin": "https://evil.example"},
        {"Origin": "http://testserver.evil.example"},
        {"Sec-Fetch-Site": "cross-site", "Origin": "http://testserver"},
        None,
    ],
)
def test_cross_site_beacons_are_refused(client, db, headers):
    response = send(client, beacon(), headers=headers)
    assert response.status_code == 403
    assert rum.p75_by_route() == []


def test_an_oversized_beacon_is_refused_unread(client, db):
    padded = beacon()[:-1] + b', "pad": "' + b"x" * 5000 + b'"}'
    assert send(client, padded).status_code == 413
    assert rum.p75_by_route() == []


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"route": "calls/"}',
        b'{"route": "calls/", "metrics": [], "extra": 1}',
        b'{"route": "calls/", "metrics": []}',
        beacon("calls/123/"),  # a raw path, not a route template
        beacon("no/such/route/"),
        beacon(LCP=-1),
        beacon(LCP=10**9),
        beacon(CLS=True),
        b'{"route": "calls/", "metrics": [{"name": "LCP", "value": "fast"}]}',
        b'{"route": "calls/", "metrics": [{"name": "LCP", "value": NaN}]}',
        b'{"route": "calls/", "metrics": [{"name": "FID", "value": 3}]}',
        b'{"route": "calls/", "metrics": [{"name": "LCP", "value": 3}, {"name": "LCP", "value": 4}]}',
        b'{"route": "calls/", "metrics": [{"name": "LCP", "value": 3, "id": "v4-1"}]}',
        b'{"route": ["calls/"], "metrics": [{"name": "LCP", "value": 3}]}',
    ],
)
def test_malformed_beacons_get_a_400_with_a_reason_and_count_nothing(client, db, body):
    response = send(client, body)
    assert response.status_code == 400
    assert response.json()["error"]
    assert rum.p75_by_route() == []


@override_settings(CALLIQ_RUM_BEACONS_PER_MINUTE=2)
def test_beacons_are_rate_limited_per_client(client, db):
    assert [send(client, beacon()).status_code for _ in range(4)] == [204, 204, 429, 429]
    assert send(client, beacon(), REMOTE_ADDR="10.1.2.3").status_code == 204


def test_with_redis_down_a_beacon_is_dropped_with_a_503_not_a_500(client, db, private_redis):
    caches = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": private_redis.url,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 0.2, "SOCKET_TIMEOUT": 0.2},
        }
    }
    private_redis.kill()
    with override_settings(CACHES=caches):
        assert send(client, beacon()).status_code == 503


def test_p75_from_the_log_buckets_is_within_one_percent_of_the_exact_p75():
    rng = random.Random(7)
    values = [rng.lognormvariate(7, 1.2) for _ in range(20_000)]
    buckets = Counter(rum.bucket_of(v) for v in values)
    exact = sorted(values)[math.ceil(0.75 * len(values)) - 1]
    assert rum.percentile(buckets, 0.75) == pytest.approx(exact, rel=0.01)


def test_staff_see_p75_per_route_and_others_do_not(client, member, staff_user):
    send(client, beacon("calls/", LCP=2400))
    client.force_login(member.user)
    assert client.get(reverse("monitoring:rum")).status_code == 302
    client.force_login(staff_user)
    page = client.get(reverse("monitoring:rum"))
    assert page.status_code == 200
    assert "/calls/" in page.text
    shown = re.search(r'data-metric="LCP">(\d+) ms <span class="muted">\(1\)', page.text)
    assert int(shown[1]) == pytest.approx(2400, rel=0.01)
    fragment = client.get(reverse("monitoring:rum"), headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="rum-table"')
    assert "<html" not in fragment.text
