"""Eight processes hit a failing service at once, CallIQ's breaker (Lua
scripts in Redis) against pybreaker with its Redis storage (state kept in
Redis, but read and changed with separate commands). Same private
redis-server, same simulator, same run.

The storm: every process makes its calls as fast as it can against a service
that answers 503. Counted: requests that reached the service, openings and
alerts (CallIQ: opening events in the Redis stream and alert-hook calls in
every process; pybreaker: a listener in each process), and calls answered with
the breaker's open error (pybreaker also raises it from the call that trips
it, instead of the service's error).

The trials: the breaker is already open with a short open duration (0.5 s)
and the service stays down (100 ms answers); every process keeps calling for
a few seconds. Counted: open → half-open periods, requests that reached the
service (each one a trial) and the most requests in flight at once at the
service. CallIQ's promise: one trial per period fleet-wide.

Run:  DATABASE_URL=... python bench/breaker_storm.py [--processes 8] [--calls 10] [--repeat 3] [--trial-seconds 3]
Writes bench/results/breaker_storm.txt."""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calliq.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("CALLIQ_LOG_LEVEL", "CRITICAL")

from tests.private_redis import free_port, start_redis  # noqa: E402

THRESHOLD = 5
STORM = "storm"  # default policy: open for 60 s once 5 failures in a row
TRIALS = "storm_trials"  # its own policy row: open for 0.5 s, one trial at a time
TRIAL_OPEN_SECONDS = 0.5
PATH = "/assemblyai/v2/transcript/storm"


def make_breaker(kind: str, service: str, redis_url: str, namespace: str, counts: dict[str, int]):
    """A `protected(fn)` callable and the breaker's refusal exception, for either breaker."""
    if kind == "calliq":
        from resilience.breaker import CircuitOpenError, breaker, register_alert_hook, using_shared_state

        register_alert_hook(lambda context: counts.__setitem__("alerts", counts["alerts"] + 1))
        circuit = breaker(service)

        def protected(fn):
            try:
                return circuit.call(fn)
            finally:
                # A Redis reply slower than BREAKER_REDIS_TIMEOUT (a loaded machine) sends the process to
                # its own breaker for a while: counted, so such a run shows why it let more calls through.
                if not using_shared_state():
                    counts["local"] += 1

        return protected, CircuitOpenError

    import pybreaker
    import redis

    class Count(pybreaker.CircuitBreakerListener):
        def state_change(self, cb, old_state, new_state) -> None:
            if new_state.name in counts:
                counts[new_state.name] += 1

    storage = pybreaker.CircuitRedisStorage(
        pybreaker.STATE_CLOSED, redis.Redis.from_url(redis_url), namespace=namespace
    )
    reset_timeout = TRIAL_OPEN_SECONDS if service == TRIALS else 60
    circuit = pybreaker.CircuitBreaker(
        fail_max=THRESHOLD, reset_timeout=reset_timeout, state_storage=storage, listeners=[Count()]
    )
    return circuit.call, pybreaker.CircuitBreakerError


def child(kind: str, phase: str, redis_url: str, sim_url: str, namespace: str, barrier, amount, results) -> None:
    os.environ["BREAKER_REDIS_URL"] = redis_url
    os.environ["BREAKER_KEY_PREFIX"] = namespace
    import django

    django.setup()
    import httpx

    http = httpx.Client(base_url=sim_url, timeout=5)

    def request() -> None:
        http.get(PATH, headers={"authorization": "k"}).raise_for_status()

    counts = {"alerts": 0, "open": 0, "local": 0}
    protected, refused_error = make_breaker(kind, STORM if phase == "storm" else TRIALS, redis_url, namespace, counts)
    barrier.wait()
    refused = 0
    deadline = time.monotonic() + amount
    made = 0
    while made < amount if phase == "storm" else time.monotonic() < deadline:
        made += 1
        try:
            protected(request)
        except refused_error:
            refused += 1
            if phase == "trials":
                time.sleep(0.01)  # eight processes polling an open breaker must not starve the machine
        except Exception:  # the service failing is the point
            pass
    results.put((refused, counts))


def run_children(kind, phase, processes, amount, redis_url, sim, namespace):
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [
        ctx.Process(target=child, args=(kind, phase, redis_url, sim.url, namespace, barrier, amount, results))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    return outcomes


def stream_count(redis_url: str, namespace: str, service: str, to_state: str) -> int:
    import redis

    client = redis.Redis.from_url(redis_url)
    key = f"{namespace}:{{{service}}}:events"
    return sum(1 for _, fields in client.xrange(key) if fields.get(b"to") == to_state.encode())


def storm(kind, processes, calls, redis_url, sim, control, namespace) -> tuple[int, int, int, int, int]:
    control.reset_counters()
    outcomes = run_children(kind, "storm", processes, calls, redis_url, sim, namespace)
    reached = control.requests("assemblyai")
    if kind == "calliq":
        opens = stream_count(redis_url, namespace, STORM, "open")
    else:
        opens = sum(c["open"] for _, c in outcomes)
    alerts = sum(c["alerts"] for _, c in outcomes) if kind == "calliq" else opens
    local = sum(c["local"] for _, c in outcomes)
    return reached, opens, alerts, sum(r for r, _ in outcomes), local


def trip(kind: str, redis_url: str, sim, namespace: str) -> None:
    """Open the trials breaker: THRESHOLD failures recorded from this process
    on a client without the breakers' short timeout, so a loaded machine
    cannot send them to a local breaker instead."""
    import redis

    if kind == "calliq":
        from resilience.breaker.policy import get_policy
        from resilience.breaker.store import RedisStore

        store = RedisStore(redis.Redis.from_url(redis_url), namespace)
        for _ in range(THRESHOLD):
            store.record(get_policy(TRIALS), "fail", 0, "", "error")
        return
    import httpx

    http = httpx.Client(base_url=sim.url, timeout=5)
    protected, _ = make_breaker(kind, TRIALS, redis_url, namespace, {"open": 0})
    for _ in range(THRESHOLD):
        with contextlib.suppress(Exception):  # failing is how it opens
            protected(lambda: http.get(PATH, headers={"authorization": "k"}).raise_for_status())
    http.close()


def trials(kind, processes, seconds, redis_url, sim, control, namespace) -> tuple[int | None, int, int, int]:
    trip(kind, redis_url, sim, namespace)
    control.reset_counters()
    outcomes = run_children(kind, "trials", processes, seconds, redis_url, sim, namespace)
    counters = control.counters("assemblyai")
    # pybreaker's periods are not comparable: each process moves its own copy to half-open.
    periods = stream_count(redis_url, namespace, TRIALS, "half_open") if kind == "calliq" else None
    return periods, counters["requests"], counters["max_in_flight"], sum(c["local"] for _, c in outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--calls", type=int, default=10, help="calls per process in the storm")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--trial-seconds", type=float, default=3.0, help="how long the processes call an open breaker")
    args = parser.parse_args()

    import django

    django.setup()

    from resilience.breaker.policy import ensure_policy_row
    from resilience.models import BreakerPolicy
    from resilience.providers.simulator import SimulatorControl, SimulatorServer

    ensure_policy_row(TRIALS)
    BreakerPolicy.objects.filter(service=TRIALS).update(
        open_seconds=TRIAL_OPEN_SECONDS, half_open_max_calls=1, call_timeout_seconds=5, failure_threshold=THRESHOLD
    )
    port = free_port()
    server = start_redis(port)
    redis_url = f"redis://127.0.0.1:{port}/0"
    sim = SimulatorServer()
    sim.start()
    control = SimulatorControl(sim.url, sim.secret)
    bound = THRESHOLD + args.processes - 1
    kinds = [("calliq", "calliq (Lua in Redis)"), ("pybreaker", "pybreaker + CircuitRedisStorage")]
    lines = [
        "Storm: processes calling a failing service at once (bench/breaker_storm.py)",
        f"{args.processes} processes × {args.calls} calls, service down (503, 20 ms), failure threshold "
        f"{THRESHOLD}; private redis-server :{port}; load average at start {os.getloadavg()[0]:.1f}",
        f"bound for CallIQ: threshold + processes − 1 = {bound} requests, exactly 1 opening and 1 alert",
        "",
        "local: calls a CallIQ process made on its own breaker because Redis answered slower than 0.1 s",
        "",
        f"  {'breaker':<34} {'run':>4} {'requests reached':>17} {'openings':>9} {'alerts':>7} {'open errors':>12}"
        f" {'local':>6}",
    ]
    try:
        control.configure("assemblyai", outage=True, latency_ms=20)
        for n in range(args.repeat):
            for kind, label in kinds:
                reached, opens, alerts, refused, local = storm(
                    kind, args.processes, args.calls, redis_url, sim, control, f"storm{n}{kind}"
                )
                lines.append(f"  {label:<34} {n + 1:>4} {reached:>17} {opens:>9} {alerts:>7} {refused:>12} {local:>6}")
        lines += [
            "",
            f"Trials: {args.processes} processes calling an open breaker for {args.trial_seconds:g} s "
            f"(open {TRIAL_OPEN_SECONDS} s, service down, 100 ms answers)",
            "CallIQ's promise: one trial per open → half-open period fleet-wide, never two at once",
            "(pybreaker: no fleet-wide period to count, each process moves its own copy to half-open)",
            "",
            f"  {'breaker':<34} {'run':>4} {'periods':>8} {'trials':>7} {'per period':>11} {'most at once':>13}"
            f" {'local':>6}",
        ]
        control.configure("assemblyai", outage=True, latency_ms=100)
        for n in range(args.repeat):
            for kind, label in kinds:
                periods, requests, at_once, local = trials(
                    kind, args.processes, args.trial_seconds, redis_url, sim, control, f"trials{n}{kind}"
                )
                per = f"{requests / periods:.2f}" if periods else "-"
                shown = "-" if periods is None else periods
                lines.append(f"  {label:<34} {n + 1:>4} {shown:>8} {requests:>7} {per:>11} {at_once:>13} {local:>6}")
    finally:
        BreakerPolicy.objects.filter(service=TRIALS).delete()
        control.close()
        sim.stop()
        server.terminate()
        server.wait(5)
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "bench" / "results" / "breaker_storm.txt").write_text(text)


if __name__ == "__main__":
    main()
