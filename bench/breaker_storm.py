"""Eight processes hit a failing service at once: how many requests reach it
and how many times the breaker opens, CallIQ's breaker (Lua scripts in Redis)
against pybreaker with its Redis storage (state kept in Redis, but read and
changed with separate commands). Same private redis-server, same simulator,
same run. pybreaker's openings are counted by a listener in each process.
"open errors" counts calls answered with the breaker's open error (pybreaker
also raises it from the call that trips it, instead of the service's error).

Run:  DATABASE_URL=... python bench/breaker_storm.py [--processes 8] [--calls 10] [--repeat 3]
Writes bench/results/breaker_storm.txt."""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calliq.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("CALLIQ_LOG_LEVEL", "CRITICAL")

from tests.private_redis import free_port, start_redis  # noqa: E402

THRESHOLD = 5


def child(kind: str, redis_url: str, sim_url: str, namespace: str, barrier, calls: int, results) -> None:
    os.environ["BREAKER_REDIS_URL"] = redis_url
    os.environ["BREAKER_KEY_PREFIX"] = namespace
    import django

    django.setup()
    import httpx

    http = httpx.Client(base_url=sim_url, timeout=5)

    def request() -> None:
        http.get("/assemblyai/v2/transcript/storm", headers={"authorization": "k"}).raise_for_status()

    opened = 0
    if kind == "calliq":
        from resilience.breaker import CircuitOpenError, breaker

        circuit = breaker("storm")

        def protected() -> None:
            circuit.call(request)

        refused_error = CircuitOpenError
    else:
        import pybreaker
        import redis

        class CountOpens(pybreaker.CircuitBreakerListener):
            def state_change(self, cb, old_state, new_state) -> None:
                nonlocal opened
                if new_state.name == pybreaker.STATE_OPEN:
                    opened += 1

        storage = pybreaker.CircuitRedisStorage(
            pybreaker.STATE_CLOSED, redis.Redis.from_url(redis_url), namespace=namespace
        )
        circuit = pybreaker.CircuitBreaker(
            fail_max=THRESHOLD, reset_timeout=60, state_storage=storage, listeners=[CountOpens()]
        )

        def protected() -> None:
            circuit.call(request)

        refused_error = pybreaker.CircuitBreakerError
    barrier.wait()
    refused = 0
    for _ in range(calls):
        try:
            protected()
        except refused_error:
            refused += 1
        except Exception:  # the service failing is the point of the storm
            pass
    results.put((refused, opened))


def run(kind: str, processes: int, calls: int, redis_url: str, sim, control, namespace: str) -> tuple[int, int, int]:
    import redis

    control.reset_counters()
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(processes), ctx.Queue()
    procs = [
        ctx.Process(target=child, args=(kind, redis_url, sim.url, namespace, barrier, calls, results))
        for _ in range(processes)
    ]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(30)
    reached = control.requests("assemblyai")
    if kind == "calliq":
        client = redis.Redis.from_url(redis_url)
        opens = sum(1 for _, fields in client.xrange(f"{namespace}:{{storm}}:events") if fields.get(b"to") == b"open")
    else:
        opens = sum(o for _, o in outcomes)
    return reached, opens, sum(r for r, _ in outcomes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--calls", type=int, default=10, help="calls per process")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import django

    django.setup()

    from resilience.providers.simulator import SimulatorControl, SimulatorServer

    port = free_port()
    server = start_redis(port)
    redis_url = f"redis://127.0.0.1:{port}/0"
    sim = SimulatorServer()
    sim.start()
    control = SimulatorControl(sim.url)
    control.configure("assemblyai", outage=True, latency_ms=20)
    bound = THRESHOLD + args.processes - 1
    lines = [
        "Storm: processes calling a failing service at once (bench/breaker_storm.py)",
        f"{args.processes} processes × {args.calls} calls, service down (503, 20 ms), failure threshold "
        f"{THRESHOLD}; private redis-server :{port}",
        f"bound for CallIQ: threshold + processes − 1 = {bound} requests, exactly 1 opening",
        "",
        f"  {'breaker':<34} {'run':>4} {'requests reached':>17} {'openings':>9} {'open errors':>14}",
    ]
    try:
        for n in range(args.repeat):
            for kind, label in [("calliq", "calliq (Lua in Redis)"), ("pybreaker", "pybreaker + CircuitRedisStorage")]:
                reached, opens, refused = run(
                    kind, args.processes, args.calls, redis_url, sim, control, f"storm{n}{kind}"
                )
                lines.append(f"  {label:<34} {n + 1:>4} {reached:>17} {opens:>9} {refused:>14}")
    finally:
        control.close()
        sim.stop()
        server.terminate()
        server.wait(5)
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "bench" / "results" / "breaker_storm.txt").write_text(text)


if __name__ == "__main__":
    main()
