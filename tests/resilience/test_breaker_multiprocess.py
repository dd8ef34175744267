"""Many processes, one breaker: children (multiprocessing, spawn) run Django
against the test database and the same Redis and call the simulator through
the assemblyai breaker.

The bound on requests reaching a failing service during a storm of P processes
opening a breaker with threshold T: the breaker opens when the T-th failure is
recorded; after that every acquire sees OPEN. The only other requests that can
reach the service are calls admitted while CLOSED and still in flight at that
moment: at most one per other process, since each process calls sequentially.
So requests ≤ T + (P − 1): 5 + 7 = 12 for 8 processes."""

from __future__ import annotations

import multiprocessing

import pytest

from resilience.breaker import breaker
from resilience.models import BreakerEvent
from tests.resilience import storm_worker

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PROCESSES = 8
THRESHOLD = 5
BOUND = THRESHOLD + PROCESSES - 1


def run_children(target, env, *args, processes=PROCESSES):
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes)
    results = ctx.Queue()
    children = [ctx.Process(target=target, args=(env, barrier, *args, results)) for _ in range(processes)]
    for child in children:
        child.start()
    outcomes = [results.get(timeout=120) for _ in children]
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    return outcomes


def test_eight_processes_open_the_breaker_exactly_once_and_few_requests_reach_the_service(simulator, sim, fast_policy):
    fast_policy("assemblyai", failure_threshold=THRESHOLD, open_seconds=60)
    sim.configure("assemblyai", outage=True, latency_ms=20)
    env = storm_worker.child_env(simulator.url)

    outcomes = run_children(storm_worker.storm, env, 10)

    flat = [o for per_process in outcomes for o in per_process]
    reached = sim.requests("assemblyai")
    print(f"storm: {reached} of {len(flat)} calls reached the service (bound {BOUND})")
    assert THRESHOLD <= reached <= BOUND
    assert flat.count("failed") == reached
    assert flat.count("refused") == len(flat) - reached
    breaker("assemblyai").sync_events()
    assert BreakerEvent.objects.filter(service="assemblyai", to_state="open").count() == 1
    assert breaker("assemblyai").snapshot().state == "open"


@pytest.mark.parametrize("trials", [1, 2])
def test_in_half_open_no_more_than_the_allowed_trials_reach_the_service(simulator, sim, fast_policy, trials):
    fast_policy(
        "assemblyai", failure_threshold=THRESHOLD, open_seconds=0.3, half_open_max_calls=trials, call_timeout_seconds=5
    )
    sim.configure("assemblyai", outage=True, latency_ms=100)
    client = storm_worker._client()
    for _ in range(THRESHOLD):
        storm_worker._one_call(client)
    assert breaker("assemblyai").snapshot().state == "open"
    sim.reset_counters()
    env = storm_worker.child_env(simulator.url)

    run_children(storm_worker.hammer, env, 2.5)

    breaker("assemblyai").sync_events()
    half_opens = BreakerEvent.objects.filter(service="assemblyai", to_state="half_open").count()
    counters = sim.counters("assemblyai")
    assert half_opens >= 2  # several open → half-open → open cycles happened
    assert counters["max_in_flight"] <= trials
    assert half_opens <= counters["requests"] <= trials * half_opens
