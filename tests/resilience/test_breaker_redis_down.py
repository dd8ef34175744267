"""Redis going away: refused, stalled (SIGSTOP) or killed mid-run. Callers
carry on with per-process breakers that follow the same rules, the machinery
never raises into them, and they return to the shared state when Redis is
back. The breakers here use a private redis-server the test controls."""

from __future__ import annotations

import logging
import multiprocessing
import time

import pytest
from django.test import override_settings

from resilience.breaker import CircuitOpenError, breaker, caches_with_breakers_at, using_shared_state
from tests.resilience import storm_worker

pytestmark = pytest.mark.slow


@pytest.fixture
def breakers_on(private_redis):
    with override_settings(CACHES=caches_with_breakers_at(private_redis.url), BREAKER_REDIS_RETRY_SECONDS=0.3):
        yield private_redis


def failing():
    raise RuntimeError("service down")


def test_a_refused_connection_falls_back_to_a_local_breaker_that_still_opens(db, breakers_on, fast_policy, caplog):
    fast_policy("openai", open_seconds=60)
    assert breaker("openai").call(lambda: "shared") == "shared"
    assert using_shared_state()
    breakers_on.kill()
    with caplog.at_level(logging.WARNING, logger="calliq.resilience.breaker"):
        assert breaker("openai").call(lambda: "local") == "local"
        assert not using_shared_state()
        for _ in range(5):
            with pytest.raises(RuntimeError):
                breaker("openai").call(failing)
        with pytest.raises(CircuitOpenError):
            breaker("openai").call(lambda: "refused by the local breaker")
    assert any("Redis unreachable" in r.getMessage() for r in caplog.records)
    assert breaker("openai").snapshot().shared is False


def test_a_stalled_redis_hands_over_to_the_local_breaker_and_back_when_it_answers(db, breakers_on, fast_policy, caplog):
    fast_policy("openai", open_seconds=60)
    assert breaker("openai").call(lambda: "shared") == "shared"
    breakers_on.freeze()  # accepts connections, answers nothing: a stall, not a refusal
    try:
        with caplog.at_level(logging.WARNING, logger="calliq.resilience.breaker"):
            assert breaker("openai").call(lambda: "still served") == "still served"
            assert not using_shared_state()
            # Within the retry window calls go straight to the local breaker.
            assert [breaker("openai").call(str, n) for n in range(3)] == ["0", "1", "2"]
    finally:
        breakers_on.thaw()
    time.sleep(0.35)
    with caplog.at_level(logging.WARNING, logger="calliq.resilience.breaker"):
        assert breaker("openai").call(lambda: "shared again") == "shared again"
    assert using_shared_state()
    assert breaker("openai").snapshot().shared is True
    messages = [r.getMessage() for r in caplog.records]
    assert any("Redis unreachable" in m and "TimeoutError" in m for m in messages)
    assert any("back on the shared breaker state" in m for m in messages)


def test_a_stalled_redis_during_a_result_report_is_not_the_callers_problem(db, breakers_on, fast_policy):
    fast_policy("openai")

    def stall_then_answer():
        breakers_on.freeze()
        return "answer"

    try:
        assert breaker("openai").call(stall_then_answer) == "answer"
    finally:
        breakers_on.thaw()
    assert not using_shared_state()


@pytest.mark.django_db(transaction=True)
def test_redis_killed_mid_run_callers_carry_on_with_local_breakers_and_come_back(
    private_redis, simulator, sim, fast_policy
):
    fast_policy("assemblyai", open_seconds=60, failure_threshold=5)
    sim.configure("assemblyai", latency_ms=5)
    env = storm_worker.child_env(simulator.url, BREAKER_REDIS_URL=private_redis.url, BREAKER_REDIS_RETRY_SECONDS="0.3")
    ctx = multiprocessing.get_context("spawn")
    ready, stop, results = ctx.Semaphore(0), ctx.Event(), ctx.Queue()
    children = [
        ctx.Process(target=storm_worker.through_redis_outage, args=(env, ready, stop, results)) for _ in range(4)
    ]
    for child in children:
        child.start()
    for _ in children:
        assert ready.acquire(timeout=60)
    time.sleep(1.0)
    private_redis.kill()
    sim.configure("assemblyai", outage=True)  # and the service fails while Redis is gone
    time.sleep(1.5)
    sim.configure("assemblyai", outage=False)
    private_redis.start()
    time.sleep(1.5)
    stop.set()
    reports = [results.get(timeout=60) for _ in children]
    for child in children:
        child.join(30)
        assert child.exitcode == 0

    for report in reports:
        assert report["errors"] == []
        shared = [s for s, _ in report["calls"]]
        first_local = shared.index(False)
        back = first_local + shared[first_local:].index(True)
        assert all(shared[:first_local])  # shared state before the kill
        assert shared[-1]  # and shared again at the end
        during = [outcome for s, outcome in report["calls"][first_local:back] if not s]
        # The local breaker followed the rules: failures opened it, then it refused.
        assert "failed" in during
        assert "refused" in during
        assert during.index("refused") >= during.index("failed")
