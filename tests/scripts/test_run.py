"""`make run` as a person uses it, in a fresh clone: the stack comes up under
honcho, a Celery worker killed with SIGKILL (as the OOM killer would) is named
on the console and comes back while the web app keeps answering, and Ctrl-C
leaves no process of the run behind. Also: a taken port is named, with its
owner and the variable that changes it, before anything starts."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.private_redis import free_port

REPO = Path(__file__).resolve().parents[2]
PROC = Path("/proc")

pytestmark = pytest.mark.slow


def stat_fields(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: state, ppid, pgrp, ... (field 22, starttime, is [19])."""
    return (PROC / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()


def proc_identity(pid: int) -> tuple[int, str]:
    """(pid, start time): a PID the kernel reused later is another process."""
    try:
        fields = stat_fields(pid)
    except OSError:
        return (pid, "")
    return (pid, "" if fields[0] == "Z" else fields[19])


def parent_of(pid: int) -> int:
    try:
        return int(stat_fields(pid)[1])
    except OSError:
        return 0


def group_of(pid: int) -> int:
    try:
        return int(stat_fields(pid)[2])
    except OSError:
        return 0


def cmdline(pid: int) -> str:
    try:
        return (PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def children_of(root: int) -> list[int]:
    """Every live descendant of root."""
    parents = {}
    for entry in PROC.glob("[0-9]*"):
        parents[int(entry.name)] = parent_of(int(entry.name))
    found, frontier = [], [root]
    while frontier:
        current = frontier.pop()
        for pid, parent in parents.items():
            if parent == current:
                found.append(pid)
                frontier.append(pid)
    return found


def processes_in_groups(groups: set[int]) -> list[str]:
    found = []
    for entry in PROC.glob("[0-9]*"):
        try:
            fields = stat_fields(int(entry.name))
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[2]) in groups:
            found.append(f"{entry.name}: {cmdline(int(entry.name))}")
    return found


def status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def wait_for(predicate, seconds: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.monotonic() + seconds
    while not predicate():
        if proc is not None and proc.poll() is not None:
            pytest.fail(f"the run stopped while waiting for {what}:\n{log.read_text() if log else ''}")
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}:\n{log.read_text()[-4000:] if log else ''}")
        time.sleep(0.2)


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """The committed tree, cloned; the shared .venv (and node_modules, once there is a package.json)
    by symlink: their stamps match, nothing reinstalls."""
    dest = tmp_path / "calliq"
    subprocess.run(["git", "clone", "--quiet", str(REPO), str(dest)], check=True)
    for installed in (".venv", "node_modules"):
        if (REPO / installed).exists():
            (dest / installed).symlink_to((REPO / installed).resolve())
    return dest


def run_env(**extra: str) -> dict[str, str]:
    """A person's shell: nothing of the test settings (eager Celery, test secret key) leaks in."""
    env = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TZ") if name in os.environ}
    env.update(
        REDIS_URL=os.environ["REDIS_URL"],  # the tests' own Redis DB (conftest empties it)
        CACHE_KEY_PREFIX="calliq-runtest",
        CALLIQ_DEMO_CALLS="200",
        DJANGO_DEBUG="1",
    )
    env.update(extra)
    return env


def supervised(run_pid: int, name: str) -> int | None:
    """The main process of a Procfile line (`celery ... worker`, `manage.py provider_simulator`...):
    the child of the supervisor whose command line holds name."""
    for pid in children_of(run_pid):
        command = cmdline(pid)
        if name in command and "supervise.py" not in command and "supervise.py" in cmdline(parent_of(pid)):
            return pid
    return None


class Run:
    """`bash scripts/run.sh` in the clone, in a session of its own (what Ctrl-C in a terminal signals),
    remembering every process that ever ran under it."""

    def __init__(self, clone: Path, console: Path, **env: str) -> None:
        self.clone, self.console = clone, console
        self.port = int(env["PORT"])
        self.app = f"http://127.0.0.1:{self.port}/accounts/login/"
        with console.open("w") as out:
            self.proc = subprocess.Popen(
                ["bash", "scripts/run.sh"],
                cwd=clone,
                env=run_env(**env),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.seen: set[tuple[int, str]] = set()
        self.groups: set[int] = {self.proc.pid}

    def output(self) -> str:
        return self.console.read_text()

    def log(self, name: str) -> str:
        path = self.clone / "var" / "log" / f"{name}.log"
        return path.read_text() if path.exists() else ""

    def wait_for(self, predicate, seconds: float, what: str) -> None:
        wait_for(predicate, seconds, what, self.proc, self.console)

    def remember(self) -> None:
        identities = {proc_identity(pid) for pid in children_of(self.proc.pid)}
        self.seen |= {identity for identity in identities if identity[1]}
        self.groups |= {group_of(pid) for pid, _ in identities} - {0}

    def survivors(self) -> list[str]:
        alive = [f"{pid}: {cmdline(pid)}" for pid, start in self.seen if proc_identity(pid) == (pid, start)]
        return alive + processes_in_groups(self.groups)

    def kill_everything(self) -> None:
        """Only when a test failed half-way: nothing of the run may outlive the test."""
        self.remember()
        for pid, start in self.seen:
            if proc_identity(pid) == (pid, start):
                os.kill(pid, signal.SIGKILL)
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def assert_port_free(port: int) -> None:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))


def test_worker_killed_comes_back_web_keeps_answering_and_ctrl_c_leaves_nothing(clone, tmp_path):
    simulator_port = free_port(None)
    run = Run(clone, tmp_path / "console.log", PORT=str(free_port(None)), SIMULATOR_PORT=str(simulator_port))
    try:
        run.wait_for(lambda: status_of(run.app) == 200, 240, "the app to answer")
        run.wait_for(lambda: "ready." in run.log("worker"), 120, "the worker")
        run.remember()
        worker = supervised(run.proc.pid, " worker ")
        assert worker is not None, "no Celery worker under the run"

        os.kill(worker, signal.SIGKILL)

        run.wait_for(lambda: run.log("worker").count("ready.") == 2, 120, "the worker to come back")
        assert status_of(run.app) == 200
        assert run.proc.poll() is None
        output = run.output()
        assert f"==> worker (pid {worker}) exited: killed by SIGKILL (signal 9)." in output
        assert "==> Last lines of var/log/worker.log:" in output
        assert "==> Restarting worker in 1 s" in output
        assert supervised(run.proc.pid, " worker ") not in (None, worker)
        run.remember()
        assert len(run.seen) >= 10  # honcho, shells, supervisors, gunicorn and its workers, simulator, celery...

        os.killpg(run.proc.pid, signal.SIGINT)
        run.proc.wait(timeout=30)
    finally:
        if run.proc.poll() is None:
            run.kill_everything()

    output = run.output()
    assert output.count("SIGINT received") == 1
    assert "CallIQ stopped; logs in var/log/" in output
    assert "stopped because" not in output
    assert run.survivors() == []
    # The ports are free again: the next `make run` starts.
    assert_port_free(run.port)
    assert_port_free(simulator_port)


def test_simulator_exit_stops_the_stack_with_its_private_redis_and_names_the_cause(clone, tmp_path):
    redis_port = free_port(None)
    run = Run(
        clone,
        tmp_path / "console.log",
        PORT=str(free_port(None)),
        SIMULATOR_PORT=str(free_port(None)),
        REDIS_URL=f"redis://127.0.0.1:{free_port(None)}/0",  # nothing answers there
        PRIVATE_REDIS_PORT=str(redis_port),
    )
    try:
        run.wait_for(lambda: status_of(run.app) == 200, 240, "the app to answer")
        run.wait_for(lambda: "ready." in run.log("worker"), 120, "the worker")
        assert f"a private redis-server will serve 127.0.0.1:{redis_port}" in run.output()
        assert supervised(run.proc.pid, "redis-server") is not None
        run.remember()
        simulator = supervised(run.proc.pid, "provider_simulator")
        assert simulator is not None

        os.kill(simulator, signal.SIGKILL)
        run.proc.wait(timeout=30)
    finally:
        if run.proc.poll() is None:
            run.kill_everything()

    assert run.proc.returncode != 0
    output = run.output()
    assert f"==> simulator (pid {simulator}) exited: killed by SIGKILL (signal 9)." in output
    assert "==> simulator is not restarted: stopping every process of the stack." in output
    assert f"CallIQ stopped because simulator (pid {simulator}) exited: killed by SIGKILL (signal 9)" in output
    assert run.survivors() == []
    assert_port_free(redis_port)


def test_a_taken_port_is_named_with_its_owner_and_how_to_change_it(clone):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        result = subprocess.run(
            ["bash", "scripts/run.sh"],
            cwd=clone,
            env=run_env(PORT=str(free_port(None)), SIMULATOR_PORT=str(taken)),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
    assert result.returncode == 1
    assert f"port {taken} (the provider simulator) is already in use, by pid {os.getpid()}:" in result.stderr
    assert "SIMULATOR_PORT=<free port> make run" in result.stderr
    # It stopped before the set-up: nothing migrated, nothing started.
    assert "Applying migrations" not in result.stdout
    assert not (clone / "var" / "calliq.sqlite3").exists()


def test_a_simulator_that_accepts_our_secret_is_reused_not_reported(clone, tmp_path):
    port, secret = free_port(None), "shared-simulator-secret-for-this-test"
    simulator = subprocess.Popen(
        [str(REPO / ".venv" / "bin" / "python"), "manage.py", "provider_simulator", "--port", str(port)],
        cwd=REPO,
        env={**os.environ, "PROVIDER_SIMULATOR_SECRET": secret},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    run = None
    try:
        wait_for(lambda: status_of(f"http://127.0.0.1:{port}/_sim/state") != 0, 60, "the simulator", simulator)
        run = Run(
            clone,
            tmp_path / "console.log",
            PORT=str(free_port(None)),
            SIMULATOR_PORT=str(port),
            PROVIDER_SIMULATOR_SECRET=secret,
        )
        run.wait_for(lambda: "Applying migrations" in run.output(), 120, "the set-up")
        output = run.output()
        assert (
            f"Reusing the provider simulator that already answers at http://127.0.0.1:{port} (pid {simulator.pid}:"
            in output
        )
        assert "already in use" not in output
        # Stopped during the set-up: nothing of the stack was started yet.
        os.killpg(run.proc.pid, signal.SIGINT)
        run.proc.wait(timeout=60)
    finally:
        if run is not None and run.proc.poll() is None:
            run.kill_everything()
        simulator.terminate()
        simulator.wait(10)
    assert "Starting" not in run.output()
