"""What a protected call costs in CLOSED state, and what the saving must not
cost: one EVALSHA per call (the result's record, whose reply also says the
state), a "closed" answer trusted for at most one call after the breaker
opened elsewhere, and a rolling window that keeps pruning itself."""

from __future__ import annotations

import contextlib
import time

import pytest
from django.test import override_settings

from resilience.breaker import CircuitOpenError, breaker, caches_with_breakers_at
from resilience.breaker.connection import ALIAS
from resilience.breaker.policy import POLICY_FIELDS, Policy, get_policy
from resilience.breaker.store import RedisStore
from resilience.models import BreakerPolicy

pytestmark = pytest.mark.slow


@pytest.fixture
def breakers_on(private_redis):
    with override_settings(CACHES=caches_with_breakers_at(private_redis.url), BREAKER_TRUST_CLOSED_SECONDS=60):
        yield private_redis


def evalsha_calls(server) -> int:
    stats = server.client().info("commandstats")
    return stats.get("cmdstat_evalsha", {}).get("calls", 0)


def another_process(server) -> RedisStore:
    """The same Redis state as seen by another process (its own client, its own cache of nothing)."""
    from django.conf import settings

    return RedisStore(server.client(), settings.BREAKER_KEY_PREFIX)


def test_a_closed_breaker_costs_one_script_call_per_protected_call(db, breakers_on, fast_policy):
    fast_policy("openai", open_seconds=60)
    circuit = breaker("openai")
    assert circuit.call(lambda: "warm") == "warm"  # asks, then records: the scripts are loaded
    before = evalsha_calls(breakers_on)
    assert [circuit.call(str, n) for n in range(20)] == [str(n) for n in range(20)]
    assert evalsha_calls(breakers_on) - before == 20
    snap = circuit.snapshot()
    assert (snap.calls, snap.successes, snap.window_calls) == (21, 21, 21)


def test_failures_still_open_the_breaker_and_every_call_after_asks_redis(db, breakers_on, fast_policy):
    fast_policy("openai", open_seconds=60, failure_threshold=3)
    circuit = breaker("openai")
    assert circuit.call(lambda: "ok") == "ok"
    for _ in range(3):
        with pytest.raises(RuntimeError):
            circuit.call(lambda: (_ for _ in ()).throw(RuntimeError("down")))
    before = evalsha_calls(breakers_on)
    for _ in range(3):
        with pytest.raises(CircuitOpenError):
            circuit.call(lambda: pytest.fail("an open breaker let a call through"))
    assert evalsha_calls(breakers_on) - before == 3
    assert circuit.snapshot().rejections == 3


def test_a_breaker_opened_elsewhere_lets_at_most_one_more_call_through_here(db, breakers_on, fast_policy):
    fast_policy("openai", open_seconds=60)
    circuit = breaker("openai")
    assert circuit.call(lambda: "closed") == "closed"  # this process has just heard "closed"
    another_process(breakers_on).force(get_policy("openai"), "open", "forced open by another process")
    made = []
    for n in range(5):
        with contextlib.suppress(CircuitOpenError):
            circuit.call(made.append, n)
    # The one call admitted on the old answer is the call a process could have had in flight at the
    # opening anyway; its result's reply says "forced open", and from then on this process asks.
    assert made == [0]


def test_with_no_trust_every_call_asks_redis_and_sees_the_opening_at_once(db, private_redis, fast_policy):
    fast_policy("openai", open_seconds=60)
    with override_settings(CACHES=caches_with_breakers_at(private_redis.url), BREAKER_TRUST_CLOSED_SECONDS=0):
        circuit = breaker("openai")
        assert circuit.call(lambda: "closed") == "closed"
        another_process(private_redis).force(get_policy("openai"), "open", "forced open by another process")
        with pytest.raises(CircuitOpenError):
            circuit.call(lambda: pytest.fail("the opening was not seen"))


def test_a_stale_closed_answer_never_admits_a_call_into_half_open(db, breakers_on, fast_policy):
    # Trust is capped at the open duration: reaching half-open takes at least that long.
    fast_policy("openai", open_seconds=0.2, half_open_max_calls=1, failure_threshold=1)
    circuit = breaker("openai")
    assert circuit.call(lambda: "closed") == "closed"
    elsewhere = another_process(breakers_on)
    policy = get_policy("openai")
    reply = elsewhere.record(policy, "fail", 0, "", "error")  # another process's failure opens it
    assert reply.state == "open"
    time.sleep(0.25)
    assert elsewhere.acquire(policy, "their-trial").state == "half_open"  # they hold the one trial permit
    with pytest.raises(CircuitOpenError) as refused:
        circuit.call(lambda: pytest.fail("a second trial went out"))
    assert refused.value.state == "half_open"


def test_the_rolling_window_drops_buckets_that_left_it(db, breakers_on, fast_policy):
    fast_policy("openai", window_seconds=1, open_seconds=60)
    circuit = breaker("openai")
    for _ in range(3):
        circuit.call(lambda: None)
    time.sleep(1.2)
    circuit.call(lambda: None)
    from django.conf import settings

    window = breakers_on.client().hgetall(f"{settings.BREAKER_KEY_PREFIX}:{{openai}}:window")
    assert window == {next(iter(window)): b"1"}  # only the newest bucket's count is left
    assert circuit.snapshot().window_calls == 1


def test_a_new_policy_row_has_the_policy_dataclass_defaults():
    row = BreakerPolicy(service="openai")
    assert Policy(**{name: getattr(row, name) for name in POLICY_FIELDS}) == Policy(service="openai")


def test_the_breakers_alias_is_where_breakers_get_their_client(db, breakers_on):
    from django_redis import get_redis_connection

    assert get_redis_connection(ALIAS).connection_pool.connection_kwargs["port"] == breakers_on.port
