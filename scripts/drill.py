"""The production drill (`make drill`): break each part of the fleet under load, report what users saw.

    .venv/bin/python scripts/drill.py [--calls 20000] [--phase-seconds 60] [--fault-seconds 15] [--keep-fleet]

Starts the fleet (scripts/fleet.py, seeded with --calls demo calls; reuses a
running one and leaves it running), issues an API token, shortens the
breakers' open period (--breaker-open-seconds, so a breaker can close within
a phase), then runs the load (scripts/drill_load.py, a second process) through
the round-robin for the whole drill while the phases run in turn, each
--phase-seconds long with its fault held --fault-seconds after a quiet lead:

    baseline            nothing broken: the reference for latency
    redis-kill          SIGKILL of the cache's Redis primary: Sentinel promotes the replica;
                        the killed one is started again (Sentinel makes it a replica)
    redis-stop          SIGSTOP of the cache's Redis primary (a stall), SIGCONT after
    pg-replica-stop     the PostgreSQL replica stopped (fast shutdown), started after
    pg-primary-restart  the fleet's private PostgreSQL primary stopped and started again
    provider-outage     the simulator's full outage on every provider, then recovery
    worker-kill         SIGKILL of worker-a's process group (mid-task: uploads flow), started after
    web-cut             web-b cut off from Redis: SIGSTOP of its Redis proxy, SIGCONT after

Then it waits (--drain-seconds) for every uploaded call to finish its
pipeline, reads the uploaded calls' states, the breakers' transitions and the
simulator's sent emails, writes docs/drill/<date>-<commit>.md with plots
(scripts/drill_report.py), stops a fleet it started, and exits 1 when a goal failed.
Records of the run: var/drill/<stamp>/.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
import drill_report
import fleet

PHASES = [
    "baseline",
    "redis-kill",
    "redis-stop",
    "pg-replica-stop",
    "pg-primary-restart",
    "provider-outage",
    "worker-kill",
    "web-cut",
]


def git(*args: str) -> str:
    return subprocess.run(["git", *args], cwd=fleet.ROOT, capture_output=True, text=True).stdout.strip()


def say(message: str) -> None:
    print(f"drill: {time.strftime('%H:%M:%S')} {message}", flush=True)


def shell(state: dict, code: str) -> str:
    """Run Python in the fleet's Django environment; returns what it printed."""
    env = {**os.environ, **state["env"]["common"]}
    done = subprocess.run(
        [fleet.PY, "manage.py", "shell", "-c", code],
        cwd=fleet.ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""


def prepare(state: dict, open_seconds: float) -> str:
    """An API token for the load, and breaker policies that close within a phase."""
    return shell(
        state,
        "import dataclasses\n"
        "from django.contrib.auth import get_user_model\n"
        "from calls.tenancy.models import ApiToken, Membership\n"
        "from resilience.breaker.policy import default_policy\n"
        "from resilience.models import BreakerPolicy\n"
        "from resilience.providers import SERVICES\n"
        "for s in SERVICES:\n"
        "    d = dataclasses.asdict(default_policy(s)); d.pop('service'); d['open_seconds'] = "
        f"{open_seconds}\n"
        "    BreakerPolicy.objects.update_or_create(service=s, defaults=d)\n"
        "u = get_user_model().objects.get(username='demo@calliq.example')\n"
        "m = Membership.objects.filter(user=u).order_by('pk').first()\n"
        "print(ApiToken.issue(user=u, organization=m.organization, name='drill')[1])\n",
    )


class Faults:
    """Inject and recover each phase's fault on the fleet recorded in `state`."""

    def __init__(self, state: dict) -> None:
        self.state = state
        self.ports = state["ports"]
        self.held: str | None = None

    def cache_primary(self) -> str:
        sentinel = redis.Redis(port=self.ports["sentinel"], socket_timeout=2)
        _, port = sentinel.execute_command("SENTINEL get-master-addr-by-name", fleet.SENTINEL_SERVICE)
        return next(name for name in ("redis-a", "redis-b") if self.ports[name] == int(port))

    def simulator(self, **knobs: object) -> None:
        httpx.post(
            f"http://127.0.0.1:{self.ports['simulator']}/_sim/config",
            json={"service": "all", **knobs},
            headers={"X-Simulator-Secret": self.state["env"]["common"]["PROVIDER_SIMULATOR_SECRET"]},
            timeout=5,
        ).raise_for_status()

    def inject(self, phase: str) -> str:
        """Break something; returns what was done (for the report)."""
        if phase == "redis-kill":
            self.held = self.cache_primary()
            fleet.signal_process(self.state, self.held, signal.SIGKILL)
            return f"SIGKILL {self.held} (the cache's primary)"
        if phase == "redis-stop":
            self.held = self.cache_primary()
            fleet.signal_process(self.state, self.held, signal.SIGSTOP)
            return f"SIGSTOP {self.held} (the cache's primary)"
        if phase == "pg-replica-stop":
            fleet.stop(self.state, "pg-replica")
            return "pg-replica stopped (fast shutdown)"
        if phase == "pg-primary-restart":
            fleet.stop(self.state, "pg-primary")
            fleet.respawn(self.state, "pg-primary")
            return "pg-primary stopped (fast shutdown) and started again"
        if phase == "provider-outage":
            self.simulator(outage=True)
            return "simulator: outage on assemblyai, openai, paddle, resend"
        if phase == "worker-kill":
            fleet.signal_process(self.state, "worker-a", signal.SIGKILL)
            return "SIGKILL worker-a's process group (master and pool)"
        if phase == "web-cut":
            fleet.signal_process(self.state, "redis-proxy-b", signal.SIGSTOP)
            return "SIGSTOP redis-proxy-b: web-b's only way to Redis"
        return "nothing"

    def recover(self, phase: str) -> None:
        if phase == "redis-kill":
            fleet.respawn(self.state, self.held)
        elif phase == "redis-stop":
            fleet.signal_process(self.state, self.held, signal.SIGCONT)
        elif phase == "pg-replica-stop":
            fleet.respawn(self.state, "pg-replica")
        elif phase == "provider-outage":
            self.simulator(outage=False)
        elif phase == "worker-kill":
            while fleet.alive(self.state["procs"]["worker-a"]["pid"]):
                time.sleep(0.1)
            fleet.respawn(self.state, "worker-a")
        elif phase == "web-cut":
            fleet.signal_process(self.state, "redis-proxy-b", signal.SIGCONT)

    def release_everything(self) -> None:
        """SIGCONT whatever a failed run may have left stopped."""
        for name, entry in self.state.get("procs", {}).items():
            if fleet.alive(entry["pid"]):
                with contextlib.suppress(ProcessLookupError):
                    fleet.signal_process(self.state, name, signal.SIGCONT)


def uploaded(records_path: Path) -> dict[int, str]:
    result = {}
    for line in records_path.read_text().splitlines():
        record = json.loads(line)
        if record["kind"] == "uploaded":
            result[record["call_id"]] = record["title"]
    return result


def call_states(state: dict, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    out = shell(
        state,
        "import json\nfrom calls.models import Call\n"
        f"print(json.dumps(dict(Call.objects.filter(pk__in={ids!r}).values_list('pk', 'status'))))\n",
    )
    return {int(k): v for k, v in json.loads(out).items()}


def breaker_events(state: dict, since: float) -> list[dict]:
    out = shell(
        state,
        "import json, datetime as dt\nfrom resilience.breaker import breaker\n"
        "from resilience.models import BreakerEvent\n"
        "from resilience.providers import SERVICES\n"
        "for s in SERVICES:\n    try:\n        breaker(s).sync_events()\n    except Exception:\n        pass\n"
        f"rows = BreakerEvent.objects.filter(at__gte=dt.datetime.fromtimestamp({since}, dt.UTC)).order_by('at')\n"
        "print(json.dumps([dict(service=r.service, at=r.at.timestamp(), from_state=r.from_state, "
        "to_state=r.to_state, shared=r.shared) for r in rows]))\n",
    )
    return json.loads(out)


def sent_emails(state: dict) -> list[dict]:
    response = httpx.get(
        f"http://127.0.0.1:{state['ports']['simulator']}/_sim/state",
        headers={"X-Simulator-Secret": state["env"]["common"]["PROVIDER_SIMULATOR_SECRET"]},
        timeout=5,
    )
    return response.json().get("emails_sent", [])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=int(os.environ.get("FLEET_CALLS", "20000")))
    parser.add_argument("--phase-seconds", type=float, default=60)
    parser.add_argument("--fault-seconds", type=float, default=15)
    parser.add_argument("--lead-seconds", type=float, default=10)
    parser.add_argument("--users", type=int, default=6)
    parser.add_argument("--upload-every", type=float, default=2.0)
    # Longer than the outage, so a trial comes after it; short enough to close within the phase.
    parser.add_argument("--breaker-open-seconds", type=float, default=20)
    parser.add_argument("--drain-seconds", type=float, default=180)
    parser.add_argument("--phases", default=",".join(PHASES), help="Comma-separated; baseline first.")
    parser.add_argument("--base-port", type=int, default=int(os.environ.get("FLEET_BASE_PORT", "17000")))
    parser.add_argument("--keep-fleet", action="store_true", help="Leave a fleet this run started running.")
    parser.add_argument("--out", default=str(fleet.ROOT / "docs" / "drill"))
    args = parser.parse_args()
    phases = [p for p in args.phases.split(",") if p]
    if unknown := set(phases) - set(PHASES):
        parser.error(f"unknown phases: {', '.join(sorted(unknown))}")

    commit = git("rev-parse", "--short", "HEAD") + (
        "+changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    )
    state = fleet.load_state()
    started_here = not fleet.live_processes(state)
    if started_here:
        say(f"starting the fleet with {args.calls:,} demo calls")
        state = fleet.up(args.calls, args.base_port)
    faults = Faults(state)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = fleet.ROOT / "var" / "drill" / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    records = run_dir / "requests.jsonl"
    load = None
    try:
        token = prepare(state, args.breaker_open_seconds)
        drill_started = time.time()
        total = len(phases) * args.phase_seconds + 10
        load_cmd = [
            fleet.PY,
            str(fleet.ROOT / "scripts" / "drill_load.py"),
            "--base",
            f"http://127.0.0.1:{state['ports']['lb']}",
        ]
        load_cmd += ["--seconds", str(total), "--out", str(records), "--token", token, "--users", str(args.users)]
        load_cmd += ["--upload-every", str(args.upload_every), "--run", stamp]
        load = subprocess.Popen(
            load_cmd, start_new_session=True, stdout=(run_dir / "load.log").open("w"), stderr=subprocess.STDOUT
        )
        say(f"load started (PID {load.pid}), {args.users} users, an upload every {args.upload_every:g} s")
        time.sleep(5)  # sign-ins
        windows = []
        for phase in phases:
            start = time.time()
            time.sleep(args.lead_seconds)
            fault_start = time.time()
            action = faults.inject(phase)
            say(f"{phase}: {action}")
            if phase not in ("baseline", "pg-primary-restart"):
                time.sleep(args.fault_seconds)
            faults.recover(phase)
            fault_end = time.time()
            say(f"{phase}: recovered after {fault_end - fault_start:.1f} s")
            time.sleep(max(0.0, start + args.phase_seconds - time.time()))
            windows.append(
                {
                    "name": phase,
                    "action": action,
                    "start": start,
                    "fault_start": fault_start,
                    "fault_end": fault_end,
                    "end": time.time(),
                }
            )
        load.wait(timeout=60)
        ids = uploaded(records)
        say(f"load done; waiting up to {args.drain_seconds:g} s for {len(ids)} uploaded calls to finish")
        deadline = time.monotonic() + args.drain_seconds
        while True:
            states = call_states(state, sorted(ids))
            if all(s in ("completed", "failed") for s in states.values()) and len(states) == len(ids):
                break
            if time.monotonic() > deadline:
                break
            time.sleep(5)
        drained_at = time.time()
        inputs = {
            "windows": windows,
            "uploads": {str(k): v for k, v in ids.items()},
            "call_states": {str(k): v for k, v in states.items()},
            "breaker_events": breaker_events(state, drill_started),
            "emails": sent_emails(state),
            "settings": {
                "calls": args.calls,
                "phase_seconds": args.phase_seconds,
                "fault_seconds": args.fault_seconds,
                "users": args.users,
                "upload_every": args.upload_every,
                "breaker_open_seconds": args.breaker_open_seconds,
                "drain_seconds": round(drained_at - windows[-1]["end"], 1),
                "command": " ".join(sys.argv),
                "commit": commit,
            },
        }
        # Kept beside the request records, so the report can be written again from them.
        (run_dir / "inputs.json").write_text(json.dumps(inputs))
        result = drill_report.write(out_dir=Path(args.out), records=records, **inputs)
        say(f"report: {result['path']}")
        for goal in result["goals"]:
            say(f"{'PASS' if goal['ok'] else 'FAIL'} {goal['name']}: {goal['detail']}")
        return 0 if all(g["ok"] for g in result["goals"]) else 1
    finally:
        if load is not None and load.poll() is None:
            os.killpg(load.pid, signal.SIGTERM)
            load.wait(10)
        faults.release_everything()
        if started_here and not args.keep_fleet:
            fleet.down()


if __name__ == "__main__":
    sys.exit(main())
