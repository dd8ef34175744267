"""The provider simulator: its control endpoint, its deterministic knobs, and
the `provider_simulator` command that serves it and drives it."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from resilience.providers.simulator import SECRET_HEADER, SimulatorControl, SimulatorServer
from tests.private_redis import free_port


def test_a_failure_rate_fails_a_deterministic_share_of_requests(simulator, sim):
    sim.configure("resend", failure_rate=0.25)
    statuses = [
        httpx.post(f"{simulator.url}/resend/emails", json={}, headers={"authorization": "Bearer k"}).status_code
        for _ in range(8)
    ]
    # Every fourth request fails; the others reach the API (which rejects the empty email).
    assert statuses == [422, 422, 422, 503, 422, 422, 422, 503]


def test_counters_report_requests_statuses_and_arrival_times(simulator, sim):
    sim.configure("paddle", outage=True)
    for _ in range(3):
        httpx.get(f"{simulator.url}/paddle/subscriptions/sub_1")
    counters = sim.counters("paddle")
    assert counters["requests"] == 3
    assert counters["statuses"] == {"503": 3}
    assert len(counters["timestamps"]) == 3
    assert sim.requests("openai") == 0


def test_a_429_carries_retry_after(simulator, sim):
    sim.configure("openai", rate_limit=True, retry_after=7)
    response = httpx.post(f"{simulator.url}/openai/v1/chat/completions", json={})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"


def test_the_control_endpoint_rejects_unknown_knobs_and_services_with_a_message(simulator, sim):
    bad_knob = sim.http.post("/_sim/config", json={"service": "openai", "speed": 3})
    assert bad_knob.status_code == 400
    assert "speed" in bad_knob.json()["error"]
    bad_service = sim.http.post("/_sim/config", json={"service": "stripe"})
    assert bad_service.status_code == 400


@pytest.mark.parametrize("secret", [None, "", "not-the-secret"])
def test_the_control_endpoint_requires_the_shared_secret(simulator, sim, secret):
    headers = {} if secret is None else {SECRET_HEADER: secret}
    for method, path in [("POST", "/_sim/config"), ("POST", "/_sim/reset"), ("GET", "/_sim/state")]:
        body = {"service": "all", "outage": True} if method == "POST" else None
        response = httpx.request(method, f"{simulator.url}{path}", json=body, headers=headers)
        assert response.status_code == 403
        assert SECRET_HEADER in response.json()["error"]
    assert not sim.state()["services"]["openai"]["knobs"]["outage"]


def test_a_cross_site_form_post_cannot_switch_on_an_outage(simulator, sim):
    # What a page's <form> (or fetch without a preflight) can send: a simple content type.
    for content_type in ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"]:
        response = httpx.post(
            f"{simulator.url}/_sim/config",
            content=b'{"service": "all", "outage": true}',
            headers={"content-type": content_type, SECRET_HEADER: simulator.secret},
        )
        assert response.status_code == 415
        assert "application/json" in response.json()["error"]
    assert not sim.state()["services"]["resend"]["knobs"]["outage"]


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.nip.io", "10.0.0.5:80"])
def test_a_host_that_is_not_loopback_is_refused(simulator, sim, host):
    # DNS rebinding: the browser connects to 127.0.0.1 but names the attacker's host.
    response = sim.http.get("/_sim/state", headers={"host": host})
    assert response.status_code == 421
    assert sim.http.post("/_sim/config", json={"outage": True}, headers={"host": host}).status_code == 421
    assert not sim.state()["services"]["paddle"]["knobs"]["outage"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_loopback_host_names_are_served(simulator, sim, host):
    port = simulator.server_address[1]
    assert sim.http.get("/_sim/state", headers={"host": f"{host}:{port}"}).status_code == 200
    assert sim.http.get("/_sim/state", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.1", "example.com"])
def test_the_simulator_binds_to_loopback_only(host):
    with pytest.raises(ValueError, match="loopback only"):
        SimulatorServer(host, 0)


def test_the_command_refuses_to_serve_beyond_loopback():
    with pytest.raises(CommandError, match="loopback only"):
        call_command("provider_simulator", "--host", "0.0.0.0", "--port", "0", stdout=io.StringIO())


def test_reset_restores_knobs_and_clears_counters(simulator, sim):
    sim.configure("all", outage=True)
    httpx.get(f"{simulator.url}/paddle/customers/ctm_1")
    sim.reset()
    state = sim.state()["services"]
    assert state["paddle"]["counters"]["requests"] == 0
    assert not any(service["knobs"]["outage"] for service in state.values())


def test_the_command_sets_knobs_reads_counters_and_resets(simulator, sim):
    out = io.StringIO()
    call_command(
        "provider_simulator", "--url", simulator.url, "set", "resend", "--outage", "--latency-ms", "5", stdout=out
    )
    assert sim.state()["services"]["resend"]["knobs"]["outage"] is True
    httpx.post(f"{simulator.url}/resend/emails", json={})
    out = io.StringIO()
    call_command("provider_simulator", "--url", simulator.url, "stats", "resend", stdout=out)
    assert '"requests": 1' in out.getvalue()
    call_command("provider_simulator", "--url", simulator.url, "set", "resend", "--no-outage", stdout=io.StringIO())
    assert sim.state()["services"]["resend"]["knobs"]["outage"] is False
    call_command("provider_simulator", "--url", simulator.url, "reset", stdout=io.StringIO())
    assert sim.requests("resend") == 0


def test_the_command_says_when_no_simulator_answers():
    port = free_port(range(16470, 16480))
    with pytest.raises(CommandError, match="did not answer"):
        call_command("provider_simulator", "--url", f"http://127.0.0.1:{port}", "stats", stdout=io.StringIO())


@pytest.mark.slow
def test_the_command_serves_until_killed_and_logs_requests():
    port = free_port(range(16460, 16470))
    secret = "a-secret-for-this-test"
    env = os.environ | {"DJANGO_DEBUG": "1", "PROVIDER_SIMULATOR_SECRET": secret}
    server = subprocess.Popen(
        [sys.executable, "manage.py", "provider_simulator", "--port", str(port)],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    control = SimulatorControl(f"http://127.0.0.1:{port}", secret)
    try:
        for _ in range(100):
            try:
                control.state()
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        response = httpx.post(
            f"http://127.0.0.1:{port}/openai/v1/chat/completions", json={"model": "m", "messages": []}
        )
        assert response.status_code == 401  # no API key sent
        assert control.requests("openai") == 1
    finally:
        control.close()
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=15)
    assert server.returncode == 0
    assert "POST /openai/v1/chat/completions -> 401" in output
    assert "provider simulator stopped" in output
