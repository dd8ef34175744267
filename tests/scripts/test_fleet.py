"""scripts/fleet.py as an operator uses it: one command brings a small fleet up
(private PostgreSQL primary + streaming replica + PgBouncer, Redis + replica +
Sentinel, a RabbitMQ vhost, two web hosts behind the round-robin, two workers,
the simulator), a second `up` refuses to start over it, /readyz answers through
the round-robin from both hosts, and one command brings it down leaving no
process (nor any child of one) and no vhost behind."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PY = str(REPO / ".venv" / "bin" / "python")

pytestmark = pytest.mark.slow


def free_base_port() -> int:
    """A base port whose whole fleet range (base .. base+40) is free."""
    for base in range(17300, 19000, 100):
        ports = [base + offset for offset in range(41)]
        if all(port_free(p) for p in ports):
            return base
    raise AssertionError("no free port range for a fleet")


def port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def processes() -> dict[int, tuple[int, int]]:
    """{pid: (ppid, session id)} of every live (non-zombie) process."""
    result = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if fields[0] != "Z":
                result[int(entry.name)] = (int(fields[1]), int(fields[3]))
    return result


def fleet_members(state: dict) -> set[int]:
    """Every process of the fleet: the recorded ones, everything in their sessions, PostgreSQL's children."""
    recorded = {p["pid"] for p in state["procs"].values()}
    return {
        pid
        for pid, (ppid, session) in processes().items()
        if pid in recorded or session in recorded or ppid in recorded
    }


def readyz(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=10) as response:
        return response.status


def readyz_lines(log: Path) -> int:
    return log.read_text().count("GET /readyz")


@pytest.fixture
def fleet_dir():
    # Under /tmp with a traversable mode: the clusters run as the postgres OS user.
    path = Path(tempfile.mkdtemp(prefix="calliq-fleet-test-", dir="/tmp"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_fleet_comes_up_serves_readyz_from_both_hosts_and_goes_down_leaving_nothing(fleet_dir):
    env = {**os.environ, "FLEET_DIR": str(fleet_dir / "fleet"), "FLEET_BASE_PORT": str(free_base_port())}

    def fleet(*args: str, timeout: float = 420) -> subprocess.CompletedProcess:
        command = [PY, "scripts/fleet.py", *args]
        return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)

    up = fleet("up", "--calls", "200")
    state_file = fleet_dir / "fleet" / "state.json"
    try:
        assert up.returncode == 0, up.stdout[-3000:] + up.stderr[-3000:]
        state = json.loads(state_file.read_text())
        expected = {"pg-primary", "pg-replica", "pgbouncer", "redis-a", "redis-b", "sentinel", "redis-breakers"}
        expected |= {"redis-proxy-b", "simulator", "web-a", "web-b", "lb", "worker-a", "worker-b", "beat"}
        assert set(state["procs"]) == expected
        members = fleet_members(state)
        assert {p["pid"] for p in state["procs"].values()} <= members

        again = fleet("up", "--calls", "200", timeout=60)
        assert again.returncode != 0
        assert "a fleet is running" in again.stdout + again.stderr

        logs = fleet_dir / "fleet" / "log"
        before = {host: readyz_lines(logs / f"{host}.log") for host in ("web-a", "web-b")}
        assert [readyz(state["ports"]["lb"]) for _ in range(6)] == [200] * 6
        after = {host: readyz_lines(logs / f"{host}.log") for host in ("web-a", "web-b")}
        assert after["web-a"] - before["web-a"] >= 2
        assert after["web-b"] - before["web-b"] >= 2
        vhost = state["env"]["common"]["CELERY_BROKER_URL"].rsplit("/", 1)[1]
    finally:
        down = fleet("down", timeout=180)
    assert down.returncode == 0, down.stdout[-3000:] + down.stderr[-3000:]
    assert not state_file.exists()
    live = processes()
    assert not (members & set(live)), f"left behind: {members & set(live)}"
    vhosts = subprocess.run(["rabbitmqctl", "-q", "list_vhosts"], capture_output=True, text=True).stdout.split()
    assert vhost not in vhosts
