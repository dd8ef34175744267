"""The breaker's state machine against the real Redis (and, parametrized, the
per-process fallback with Redis unreachable), with the provider simulator over
HTTP as the protected service: its counters say what reached it."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from django.db import connection
from django.test import override_settings

from resilience.breaker import (
    CircuitOpenError,
    breaker,
    caches_with_breakers_at,
    register_alert_hook,
    unregister_alert_hook,
)
from resilience.breaker.policy import get_policy
from resilience.errors import ProviderClientError, ProviderServerError
from resilience.models import BreakerEvent
from resilience.providers.openai import OpenAIClient
from tests.private_redis import free_port
from tests.resilience.breaker_support import set_policy

COMPLETION = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "pricing"}]}


@pytest.fixture(params=["shared", "local"])
def backend(request, db):
    """ "shared": state in Redis. "local": Redis refuses connections, so every
    process falls back to its in-memory breaker with the same rules."""
    if request.param == "shared":
        yield "shared"
        return
    refused = f"redis://127.0.0.1:{free_port(range(16490, 16500))}/0"
    with override_settings(CACHES=caches_with_breakers_at(refused)):
        yield "local"


@pytest.fixture
def openai(simulator):
    client = OpenAIClient(max_retries=0)
    yield client
    client.close()


def hit(client: OpenAIClient):
    """One protected call: one HTTP request to the simulator, no retries."""
    return breaker("openai").call(client.send, "POST", "/chat/completions", json=COMPLETION)


def attempt(client: OpenAIClient) -> str:
    try:
        hit(client)
    except CircuitOpenError:
        return "refused"
    except ProviderServerError:
        return "failed"
    return "ok"


def test_breaker_opens_after_five_consecutive_failures(backend, fast_policy, sim, openai):
    fast_policy("openai", open_seconds=60)
    sim.configure("openai", outage=True)
    assert [attempt(openai) for _ in range(5)] == ["failed"] * 5
    assert breaker("openai").snapshot().state == "open"
    assert attempt(openai) == "refused"
    assert sim.requests("openai") == 5


def test_breaker_stays_closed_below_the_failure_threshold_when_a_success_intervenes(backend, fast_policy, sim, openai):
    fast_policy("openai", open_seconds=60, minimum_calls=100)
    sim.configure("openai", outage=True)
    for _ in range(4):
        attempt(openai)
    sim.configure("openai", outage=False)
    assert attempt(openai) == "ok"
    sim.configure("openai", outage=True)
    assert [attempt(openai) for _ in range(4)] == ["failed"] * 4
    snap = breaker("openai").snapshot()
    assert (snap.state, snap.consecutive_failures) == ("closed", 4)


def test_breaker_opens_at_half_errors_over_the_window_once_the_minimum_is_reached(backend, fast_policy, sim, openai):
    fast_policy("openai", open_seconds=60, minimum_calls=10, error_rate_threshold=50, failure_threshold=5)
    # Deterministic 50%: the simulator fails every second request, so failures are never consecutive.
    sim.configure("openai", failure_rate=0.5)
    outcomes = [attempt(openai) for _ in range(9)]
    assert outcomes == ["ok", "failed"] * 4 + ["ok"]
    assert breaker("openai").snapshot().state == "closed"
    assert attempt(openai) == "failed"  # 5 of 10 calls failed: 50%
    snap = breaker("openai").snapshot()
    assert snap.state == "open"
    assert attempt(openai) == "refused"
    if backend == "shared":
        event = BreakerEvent.objects.get(service="openai", to_state="open")
        assert event.reason == "error rate 50% over 10 calls in 60 s"
        assert (event.window_calls, event.window_failures) == (10, 5)


def test_no_request_reaches_the_service_while_open(backend, fast_policy, sim, openai):
    fast_policy("openai", open_seconds=60)
    sim.configure("openai", outage=True)
    for _ in range(5):
        attempt(openai)
    sim.reset_counters()
    sim.configure("openai", outage=False)
    assert [attempt(openai) for _ in range(20)] == ["refused"] * 20
    assert sim.requests("openai") == 0
    assert breaker("openai").snapshot().rejections >= 20


def test_a_trial_after_the_open_duration_closes_the_breaker_when_it_succeeds(backend, fast_policy, sim, openai):
    fast_policy("openai", open_seconds=0.3)
    sim.configure("openai", outage=True)
    for _ in range(5):
        attempt(openai)
    sim.configure("openai", outage=False)
    assert attempt(openai) == "refused"
    time.sleep(0.35)
    assert attempt(openai) == "ok"
    assert breaker("openai").snapshot().state == "closed"
    if backend == "shared":
        moves = list(
            BreakerEvent.objects.for_service("openai").order_by("at", "id").values_list("from_state", "to_state")
        )
        assert moves == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_a_failed_trial_reopens_the_breaker_for_a_grown_open_duration(backend, fast_policy, sim, openai):
    fast_policy("openai", open_seconds=0.3, open_backoff_multiplier=2, max_open_seconds=10)
    sim.configure("openai", outage=True)
    for _ in range(5):
        attempt(openai)
    first = breaker("openai").snapshot()
    assert first.next_trial_ms - first.opened_at_ms == 300
    time.sleep(0.35)
    assert attempt(openai) == "failed"  # the trial reached the service and failed
    again = breaker("openai").snapshot()
    assert again.state == "open"
    assert again.next_trial_ms - again.opened_at_ms == 600
    assert attempt(openai) == "refused"
    assert sim.requests("openai") == 6


def test_forced_open_refuses_every_call_with_no_trial_due(backend, fast_policy, sim, openai):
    fast_policy("openai")
    breaker("openai").force("open", actor="test")
    with pytest.raises(CircuitOpenError) as refused:
        hit(openai)
    assert refused.value.next_trial_at is None
    assert refused.value.state == "forced_open"
    assert sim.requests("openai") == 0


def test_forced_closed_lets_every_call_through_and_never_opens(backend, fast_policy, sim, openai):
    fast_policy("openai")
    breaker("openai").force("closed", actor="test")
    sim.configure("openai", outage=True)
    assert [attempt(openai) for _ in range(12)] == ["failed"] * 12
    assert breaker("openai").snapshot().shown_state == "forced_closed"
    assert sim.requests("openai") == 12


def test_reset_returns_an_open_breaker_to_a_clean_closed_state(backend, fast_policy, sim, openai):
    fast_policy("openai", open_seconds=60)
    sim.configure("openai", outage=True)
    for _ in range(5):
        attempt(openai)
    breaker("openai").force("reset", actor="test")
    snap = breaker("openai").snapshot()
    assert (snap.shown_state, snap.consecutive_failures, snap.window_calls) == ("closed", 0, 0)
    sim.configure("openai", outage=False)
    assert attempt(openai) == "ok"


def test_forced_state_is_kept_in_the_policy_row_so_it_survives_lost_redis_state(db, fast_policy, sim, openai):
    fast_policy("openai")
    breaker("openai").force("open", actor="test")
    assert get_policy("openai").forced_state == "open"
    breaker("openai").force("reset", actor="test")
    assert get_policy("openai").forced_state == ""


def test_an_ignored_4xx_neither_resets_nor_adds_to_the_failure_count(backend, fast_policy):
    fast_policy("openai", open_seconds=60)
    circuit = breaker("openai")

    def server_error():
        raise ProviderServerError("openai", "HTTP 503", status=503)

    def our_mistake():
        raise ProviderClientError("openai", "HTTP 400", status=400)

    for _ in range(4):
        with pytest.raises(ProviderServerError):
            circuit.call(server_error)
    with pytest.raises(ProviderClientError):
        circuit.call(our_mistake)
    assert circuit.snapshot().consecutive_failures == 4
    with pytest.raises(ProviderServerError):
        circuit.call(server_error)
    assert circuit.snapshot().state == "open"


def test_an_ignored_4xx_in_half_open_frees_its_trial_slot(backend, fast_policy):
    fast_policy("openai", open_seconds=0.2, half_open_max_calls=1)
    circuit = breaker("openai")
    circuit.force("open", actor="test")
    circuit.force("reset", actor="test")
    for _ in range(5):
        with pytest.raises(RuntimeError):
            circuit.call(lambda: (_ for _ in ()).throw(RuntimeError("down")))
    time.sleep(0.25)
    with pytest.raises(ProviderClientError):
        circuit.call(lambda: (_ for _ in ()).throw(ProviderClientError("openai", "400", status=400)))
    assert circuit.snapshot().state == "half_open"
    assert circuit.call(lambda: "trial ok") == "trial ok"  # the slot was free again
    assert circuit.snapshot().state == "closed"


def test_a_trial_that_never_reports_back_frees_its_permit_after_the_call_timeout(backend, fast_policy):
    fast_policy("openai", open_seconds=0.2, call_timeout_seconds=0.3, half_open_max_calls=1)
    circuit = breaker("openai")
    for _ in range(5):
        with pytest.raises(RuntimeError):
            circuit.call(lambda: (_ for _ in ()).throw(RuntimeError("down")))
    time.sleep(0.25)
    circuit.acquire()  # a trial whose process then dies: it never records a result
    with pytest.raises(CircuitOpenError) as refused:
        circuit.acquire()
    assert refused.value.state == "half_open"
    time.sleep(0.35)
    assert circuit.call(lambda: "second trial") == "second trial"
    assert circuit.snapshot().state == "closed"


def test_fallback_answers_while_open_and_decorator_and_context_manager_protect_too(backend, fast_policy):
    fast_policy("resend", open_seconds=60, failure_threshold=2)
    circuit = breaker("resend")

    @breaker("resend")
    def send():
        raise ProviderServerError("resend", "HTTP 500", status=500)

    for _ in range(2):
        with pytest.raises(ProviderServerError):
            send()
    assert circuit.call(lambda: "sent", fallback=lambda exc: f"queued ({type(exc).__name__})") == (
        "queued (CircuitOpenError)"
    )
    with pytest.raises(CircuitOpenError), circuit.guard():
        pytest.fail("the guarded block must not run while the breaker is open")


def test_a_counted_failure_with_a_fallback_returns_the_fallback(backend, fast_policy):
    fast_policy("paddle")

    def down():
        raise ProviderServerError("paddle", "HTTP 502", status=502)

    assert breaker("paddle").call(down, fallback=lambda exc: "last known plan") == "last known plan"
    assert breaker("paddle").snapshot().failures == 1


def test_no_lock_is_held_while_calls_run_so_eight_threads_overlap(db, fast_policy):
    fast_policy("openai")
    # Each protected call returns only once all eight are inside at the same
    # time: if the breaker held a lock around the call, the barrier would break.
    inside_together = threading.Barrier(8, timeout=10)
    results = []

    def protected() -> str:
        inside_together.wait()
        return "ok"

    def work():
        try:
            results.append(breaker("openai").call(protected))
        except Exception as exc:
            results.append(repr(exc))
        finally:
            connection.close()  # each thread opened its own database connection

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == ["ok"] * 8


def test_each_transition_is_recorded_once_logged_and_alerted(db, fast_policy, caplog):
    fast_policy("openai", open_seconds=60)
    alerts = []
    hook = register_alert_hook(alerts.append)
    try:
        with caplog.at_level(logging.ERROR, logger="calliq.resilience.breaker"):
            for _ in range(7):
                with pytest.raises((RuntimeError, CircuitOpenError)):
                    breaker("openai").call(lambda: (_ for _ in ()).throw(RuntimeError("down")))
    finally:
        unregister_alert_hook(hook)
    assert BreakerEvent.objects.filter(service="openai", to_state="open").count() == 1
    assert [a.transition.to_state for a in alerts] == ["open"]
    assert alerts[0].service == "openai"
    assert any("breaker openai OPEN" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


def test_transitions_missing_from_the_database_are_copied_from_the_redis_stream(db, fast_policy):
    fast_policy("openai", open_seconds=60)
    for _ in range(5):
        with pytest.raises(RuntimeError):
            breaker("openai").call(lambda: (_ for _ in ()).throw(RuntimeError("down")))
    breaker("openai").force("reset", actor="test")
    BreakerEvent.objects.all().delete()
    assert breaker("openai").sync_events() == 2
    assert breaker("openai").sync_events() == 0
    assert list(BreakerEvent.objects.order_by("at", "id").values_list("to_state", flat=True)) == ["open", "closed"]


def test_event_history_is_bounded_per_service(db):
    BreakerEvent.objects.bulk_create(
        BreakerEvent(service="openai", event_id=str(n), from_state="closed", to_state="open", reason="x")
        for n in range(BreakerEvent.RETENTION + 30)
    )
    BreakerEvent.objects.prune("openai", BreakerEvent.RETENTION)
    assert BreakerEvent.objects.for_service("openai").count() == BreakerEvent.RETENTION


def test_counters_count_calls_failures_rejections_and_transitions(db, fast_policy):
    fast_policy("openai", open_seconds=60, failure_threshold=2)
    circuit = breaker("openai")
    assert circuit.call(lambda: 1) == 1
    for _ in range(2):
        with pytest.raises(RuntimeError):
            circuit.call(lambda: (_ for _ in ()).throw(RuntimeError("down")))
    for _ in range(3):
        with pytest.raises(CircuitOpenError):
            circuit.call(lambda: 1)
    snap = circuit.snapshot()
    assert (snap.calls, snap.successes, snap.failures, snap.rejections, snap.transitions) == (3, 1, 2, 3, 1)


def test_a_slow_call_counts_as_a_failure_when_the_policy_says_so(db, fast_policy):
    fast_policy("openai", slow_call_seconds=0.05, failure_threshold=1, open_seconds=60)
    assert breaker("openai").call(lambda: time.sleep(0.08) or "late") == "late"
    assert breaker("openai").snapshot().state == "open"


def test_a_policy_change_reaches_the_process_within_the_policy_ttl(db, fast_policy):
    fast_policy("openai", failure_threshold=5, open_seconds=60)
    with override_settings(BREAKER_POLICY_TTL=0.2):
        assert get_policy("openai").failure_threshold == 5
        from resilience.models import BreakerPolicy

        BreakerPolicy.objects.filter(service="openai").update(failure_threshold=1)  # as another process would
        time.sleep(0.25)
        with pytest.raises(RuntimeError):
            breaker("openai").call(lambda: (_ for _ in ()).throw(RuntimeError("down")))
        assert breaker("openai").snapshot().state == "open"


def test_unknown_errors_of_the_protected_function_count_and_timeouts_can_be_ignored(db, fast_policy):
    set_policy("paddle", count_timeouts=False, failure_threshold=1, open_seconds=60)
    from resilience.errors import ProviderTimeout

    with pytest.raises(ProviderTimeout):
        breaker("paddle").call(lambda: (_ for _ in ()).throw(ProviderTimeout("paddle", "slow")))
    assert breaker("paddle").snapshot().state == "closed"
    with pytest.raises(KeyError):
        breaker("paddle").call(lambda: {}["missing"])
    assert breaker("paddle").snapshot().state == "open"
