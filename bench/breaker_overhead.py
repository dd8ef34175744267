"""What a protected call costs in CLOSED state: CallIQ's breaker (state in
Redis, one Lua call to ask and one to record) against an unprotected call and
against pybreaker with its Redis storage, in one run, on a private
redis-server so the Redis figures count only this benchmark.

Round trips are counted on the client (every write of a packed command to the
socket, so a pipeline counts once); server commands come from INFO
commandstats deltas (Redis 7 also counts the commands a Lua script runs).
Also shown: the per-process fallback with Redis refusing connections, and a
stalled Redis (SIGSTOP): what the call that finds it stalled pays, and the
calls after it.

Run:  DATABASE_URL=... python bench/breaker_overhead.py [--calls 2000] [--rounds 9]
Prints a table and writes it to bench/results/breaker_overhead.txt."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calliq.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("CALLIQ_LOG_LEVEL", "ERROR")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
import pybreaker  # noqa: E402
import redis  # noqa: E402
from django.test import override_settings  # noqa: E402

from resilience.breaker import breaker, caches_with_breakers_at, reset_process_state  # noqa: E402
from resilience.providers.simulator import SimulatorControl  # noqa: E402
from tests.private_redis import free_port, start_redis  # noqa: E402

ROW = "  {:<42} {:>12} {:>12} {:>10} {:>12} {:>12} {:>12}"


class CountingConnection(redis.Connection):
    round_trips = 0

    def send_packed_command(self, command, check_health=True):
        CountingConnection.round_trips += 1
        return super().send_packed_command(command, check_health)


def server_commands(client: redis.Redis) -> int:
    stats = client.info("commandstats")
    return sum(v["calls"] for k, v in stats.items() if k not in ("cmdstat_info",))


def measure(fn, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def measure_interleaved(fns: dict, calls: int, batch: int = 20) -> dict[str, float]:
    """Seconds per call of each function, run in alternating batches so that a
    busy moment of a shared machine lands on every variant alike."""
    totals = dict.fromkeys(fns, 0.0)
    batches = max(calls // batch, 1)
    for _ in range(batches):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(batch):
                fn()
            totals[name] += time.perf_counter() - start
    return {name: total / (batches * batch) for name, total in totals.items()}


def counted(fn, admin: redis.Redis, calls: int) -> tuple[float, float]:
    CountingConnection.round_trips = 0
    before = server_commands(admin)
    for _ in range(calls):
        fn()
    # INFO itself is left out of server_commands, so the delta is the breaker's alone.
    return CountingConnection.round_trips / calls, (server_commands(admin) - before) / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per round for the no-op function")
    parser.add_argument("--http-calls", type=int, default=300, help="calls per round for the HTTP call")
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    port = free_port()
    redis_process = start_redis(port)
    # The simulator runs in a process of its own: served from threads of this
    # one, every HTTP call would also measure this process's GIL hand-offs.
    sim_port = free_port()
    sim_secret = secrets.token_urlsafe(24)
    simulator = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "provider_simulator", "--port", str(sim_port)],
        env={**os.environ, "PROVIDER_SIMULATOR_SECRET": sim_secret},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sim_url = f"http://127.0.0.1:{sim_port}"
    control = SimulatorControl(sim_url, sim_secret)
    for _ in range(200):
        with contextlib.suppress(httpx.HTTPError):
            control.state()
            break
        time.sleep(0.05)
    admin = redis.Redis(port=port)
    url = f"redis://127.0.0.1:{port}/0"
    # Both breakers count their round trips: ours through its django-redis alias, pybreaker through a client of its own.
    ours_at_private = override_settings(
        CACHES=caches_with_breakers_at(url, CONNECTION_POOL_KWARGS={"connection_class": CountingConnection})
    )
    counting = redis.Redis(
        connection_pool=redis.ConnectionPool(
            connection_class=CountingConnection, port=port, socket_timeout=0.1, socket_connect_timeout=0.1
        )
    )
    http = httpx.Client(base_url=sim_url)
    lines: list[str] = []
    ours_at_private.enable()
    try:
        ours = breaker("bench")
        ours.call(lambda: None)  # load the scripts, read the policy once
        theirs = pybreaker.CircuitBreaker(
            fail_max=5,
            reset_timeout=60,
            state_storage=pybreaker.CircuitRedisStorage(pybreaker.STATE_CLOSED, counting, namespace="bench"),
        )
        in_memory = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=60)

        def noop() -> None:
            return None

        def get() -> None:
            http.get("/_sim/state", headers={"X-Simulator-Secret": sim_secret}).raise_for_status()

        variants = {
            "unprotected": lambda fn: fn,
            "calliq breaker, CLOSED, state in Redis": lambda fn: lambda: ours.call(fn),
            "pybreaker + CircuitRedisStorage": lambda fn: lambda: theirs.call(fn),
            "pybreaker, in-memory (one process only)": lambda fn: lambda: in_memory.call(fn),
        }
        refused = f"redis://127.0.0.1:{free_port()}/0"

        header = ROW.format("variant", "per call", "added", "× unprot.", "× pybreaker", "round trips", "server cmds")
        lines += [
            "Breaker overhead in CLOSED state (bench/breaker_overhead.py)",
            f"private redis-server :{port}, loopback; median of {args.rounds} rounds, variants alternating "
            "in batches of 20 calls; "
            f"{args.calls} no-op calls / {args.http_calls} HTTP calls per round; "
            f"load average at start {os.getloadavg()[0]:.1f}",
            "round trips: client socket writes per call; server cmds: INFO commandstats delta per call "
            "(includes commands run inside Lua)",
        ]
        for label, fn, calls in [
            ("no-op function", noop, args.calls),
            ("HTTP GET to the simulator", get, args.http_calls),
        ]:
            timings: dict[str, list[float]] = {
                name: [] for name in [*variants, "calliq breaker, local (Redis refused)"]
            }
            for _ in range(args.rounds):
                per_call = measure_interleaved({name: wrap(fn) for name, wrap in variants.items()}, calls)
                for name, seconds in per_call.items():
                    timings[name].append(seconds)
                with override_settings(CACHES=caches_with_breakers_at(refused), BREAKER_REDIS_RETRY_SECONDS=3600):
                    ours.call(fn)  # discover the refusal once
                    timings["calliq breaker, local (Redis refused)"].append(measure(lambda fn=fn: ours.call(fn), calls))
            medians = {name: statistics.median(values) for name, values in timings.items()}
            trips = {
                "unprotected": (0.0, 0.0),
                "calliq breaker, CLOSED, state in Redis": counted(lambda fn=fn: ours.call(fn), admin, calls),
                "pybreaker + CircuitRedisStorage": counted(lambda fn=fn: theirs.call(fn), admin, calls),
                "pybreaker, in-memory (one process only)": (0.0, 0.0),
                "calliq breaker, local (Redis refused)": (0.0, 0.0),
            }
            lines += ["", label, header]
            base, py = medians["unprotected"], medians["pybreaker + CircuitRedisStorage"]
            for name, value in medians.items():
                rt, cmds = trips[name]
                lines.append(
                    ROW.format(
                        name,
                        f"{value * 1e6:.1f} µs",
                        f"{(value - base) * 1e6:+.1f} µs",
                        f"{value / base:.1f}×",
                        f"{value / py:.2f}×",
                        f"{rt:.1f}",
                        f"{cmds:.1f}",
                    )
                )

        # No lock is held while a protected call runs: eight threads making 100 ms calls overlap.
        control.configure("openai", latency_ms=100)
        slow = httpx.Client(base_url=sim_url, timeout=5)

        def slow_call() -> None:
            slow.get("/openai/v1/models")

        def eight_threads(fn) -> float:
            threads = [threading.Thread(target=fn) for _ in range(8)]
            start = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            return time.perf_counter() - start

        unprotected_wall = statistics.median(eight_threads(slow_call) for _ in range(3))
        protected_wall = statistics.median(eight_threads(lambda: ours.call(slow_call)) for _ in range(3))
        slow.close()
        lines += [
            "",
            "Eight threads, each one protected call of 100 ms (simulator latency), wall time",
            f"  unprotected {unprotected_wall * 1000:.0f} ms, calliq breaker {protected_wall * 1000:.0f} ms "
            f"(serialised would be 800 ms)",
        ]

        # A stalled Redis: the call that meets it pays one socket timeout, later calls use the local breaker.
        lines += ["", "Stalled Redis (SIGSTOP) with BREAKER_REDIS_TIMEOUT=0.1 s, BREAKER_REDIS_RETRY_SECONDS=1"]
        with override_settings(BREAKER_REDIS_RETRY_SECONDS=1.0):
            ours.call(noop)
            os.kill(redis_process.pid, signal.SIGSTOP)
            try:
                start = time.perf_counter()
                ours.call(noop)
                first = time.perf_counter() - start
                later = measure(lambda: ours.call(noop), 200)
            finally:
                os.kill(redis_process.pid, signal.SIGCONT)
            lines.append(f"  the call that finds Redis stalled: {first * 1000:.1f} ms added before the local fallback")
            lines.append(f"  the calls after it (local breaker, within the retry window): {later * 1e6:.1f} µs each")
    finally:
        ours_at_private.disable()
        http.close()
        control.close()
        simulator.terminate()
        simulator.wait(5)
        redis_process.terminate()
        redis_process.wait(5)
        reset_process_state()
    text = "\n".join(lines) + "\n"
    print(text)
    (ROOT / "bench" / "results" / "breaker_overhead.txt").write_text(text)


if __name__ == "__main__":
    main()
