"""Retries with tenacity on top of the breaker: the waits tenacity is given
show the backoff, the simulator's counters show what was retried."""

from __future__ import annotations

import pytest

from resilience import retry as retry_module
from resilience.breaker import CircuitOpenError, breaker
from resilience.errors import ProviderClientError, ProviderRateLimited, ProviderServerError
from resilience.providers.openai import OpenAIClient
from resilience.retry import execute_with_retry

COMPLETION = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "pricing"}]}


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """The waits tenacity is given between attempts, recorded instead of slept
    (the Retrying object's `sleep`), so the backoff is checked without a clock."""
    slept: list[float] = []
    real = retry_module.retrying

    def recording(*args, **kwargs):
        policy = real(*args, **kwargs)
        policy.sleep = lambda seconds: slept.append(float(seconds))
        return policy

    monkeypatch.setattr(retry_module, "retrying", recording)
    return slept


@pytest.fixture
def openai(simulator):
    client = OpenAIClient(max_retries=3, initial_delay=0.1)
    yield client
    client.close()


def test_backoff_grows_exponentially_with_jitter_between_attempts(db, fast_policy, sim, openai, waits):
    fast_policy("openai", failure_threshold=10)
    sim.configure("openai", fail_next=3)
    body = openai.request_json("POST", "/chat/completions", json=COMPLETION)
    assert body["object"] == "chat.completion"
    assert sim.counters("openai")["statuses"] == {"503": 3, "200": 1}
    # 0.1 s, 0.2 s, 0.4 s, each plus up to 0.1 s (one initial delay) of jitter.
    w1, w2, w3 = waits
    assert 0.1 <= w1 <= 0.2
    assert 0.2 <= w2 <= 0.3
    assert 0.4 <= w3 <= 0.5


def test_every_attempt_is_recorded_by_the_breaker(db, fast_policy, sim, openai):
    fast_policy("openai", failure_threshold=10)
    sim.configure("openai", fail_next=2)
    openai.request_json("POST", "/chat/completions", json=COMPLETION)
    snap = breaker("openai").snapshot()
    assert (snap.calls, snap.failures, snap.successes) == (3, 2, 1)


def test_retry_after_of_a_429_is_honoured(db, fast_policy, sim, openai, waits):
    fast_policy("openai", failure_threshold=10)
    sim.configure("openai", fail_next=1, failure_status=429, retry_after=0.6)
    openai.request_json("POST", "/chat/completions", json=COMPLETION)
    assert sim.counters("openai")["statuses"] == {"429": 1, "200": 1}
    assert waits == [0.6]  # Retry-After, not the 0.1 s backoff


def test_a_retry_after_longer_than_the_cap_is_not_slept_but_raised(db, fast_policy, sim, openai):
    fast_policy("openai", failure_threshold=10)
    sim.configure("openai", rate_limit=True, retry_after=120)
    with pytest.raises(ProviderRateLimited) as limited:
        openai.request_json("POST", "/chat/completions", json=COMPLETION)
    assert limited.value.retry_after == 120
    assert sim.requests("openai") == 1


def test_a_4xx_caused_by_our_request_is_not_retried(db, fast_policy, sim, openai):
    fast_policy("openai")
    with pytest.raises(ProviderClientError) as rejected:
        openai.request_json("POST", "/chat/completions", json={"messages": "not a list"})
    assert rejected.value.status == 400
    assert sim.requests("openai") == 1


def test_no_retry_once_the_breaker_is_open(db, fast_policy, sim):
    fast_policy("openai", failure_threshold=2, open_seconds=60)
    sim.configure("openai", outage=True)
    client = OpenAIClient(max_retries=6, initial_delay=0.01)
    with pytest.raises(ProviderServerError):
        client.request_json("POST", "/chat/completions", json=COMPLETION)
    assert sim.requests("openai") == 2  # the second failure opened it: no third attempt
    with pytest.raises(CircuitOpenError):
        client.request_json("POST", "/chat/completions", json=COMPLETION)
    assert sim.requests("openai") == 2
    client.close()


def test_execute_with_retry_retries_retryable_errors_of_any_function(db, fast_policy):
    fast_policy("paddle", failure_threshold=10)
    attempts = []

    def flaky():
        attempts.append(1)
        if len(attempts) < 3:
            raise ProviderServerError("paddle", "HTTP 502", status=502)
        return "plan"

    assert execute_with_retry("paddle", flaky, max_retries=3, initial_delay=0.01) == "plan"
    assert len(attempts) == 3


def test_execute_with_retry_gives_up_after_max_retries_and_can_fall_back(db, fast_policy):
    fast_policy("paddle", failure_threshold=10)
    attempts = []

    def down():
        attempts.append(1)
        raise ProviderServerError("paddle", "HTTP 503", status=503)

    with pytest.raises(ProviderServerError):
        execute_with_retry("paddle", down, max_retries=2, initial_delay=0.01)
    assert len(attempts) == 3
    assert execute_with_retry("paddle", down, 1, 0.01, fallback=lambda exc: "last known") == "last known"


def test_execute_with_retry_does_not_retry_our_own_bugs(db, fast_policy):
    fast_policy("paddle")
    attempts = []

    def bug():
        attempts.append(1)
        raise KeyError("plan")

    with pytest.raises(KeyError):
        execute_with_retry("paddle", bug, max_retries=3, initial_delay=0.01)
    assert len(attempts) == 1
