"""scripts/supervise.py, the wrapper under each Procfile line: it names a
process that exits (PID, exit status or signal, last log lines), restarts the
--restart ones, and stops its command when it is stopped itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

SUPERVISE = Path(__file__).resolve().parents[2] / "scripts" / "supervise.py"


def start(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(SUPERVISE), "--log-dir", str(tmp_path / "log"), *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for(predicate, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_process_that_is_not_restarted_is_named_with_its_signal_and_last_lines(tmp_path):
    proc = start(tmp_path, "simulator", "--", "sh", "-c", "echo first line; echo last words >&2; kill -9 $$")
    output, _ = proc.communicate(timeout=30)

    assert proc.returncode != 0
    assert "==> simulator (pid " in output
    assert "exited: killed by SIGKILL (signal 9)." in output
    tail = output.split("Last lines of")[1]
    assert "first line" in tail
    assert "last words" in tail
    assert "simulator is not restarted: stopping every process of the stack." in output
    log = (tmp_path / "log" / "simulator.log").read_text()
    assert "first line" in log
    assert "last words" in log


def test_a_restartable_process_comes_back_and_stops_with_its_supervisor(tmp_path):
    # Fails twice with status 7, then stays up (as a worker does once Redis is back).
    script = 'n=$(cat runs 2>/dev/null || echo 0); n=$((n+1)); echo $n > runs; echo "run $n"; '
    script += "[ $n -ge 3 ] || exit 7; echo $$ > child.pid; exec sleep 120"
    proc = start(tmp_path, "--restart", "worker", "--", "sh", "-c", script)
    try:
        wait_for(lambda: (tmp_path / "child.pid").exists() and (tmp_path / "child.pid").read_text().strip())
        child = int((tmp_path / "child.pid").read_text())
        assert alive(child)
        assert proc.poll() is None

        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()

    assert output.count("exited: exit status 7.") == 2
    assert "==> Restarting worker in 1 s (crash 1 of 5)." in output
    assert "==> Restarting worker in 2 s (crash 2 of 5)." in output
    assert "run 3" in output
    # A stop is not a crash: no report and no restart after it, and the command is gone.
    assert "run 4" not in output
    assert output.count("exited:") == 2
    wait_for(lambda: not alive(child), 10)


@pytest.mark.parametrize("argv", [["worker"], ["worker", "--"]])
def test_a_command_is_required(tmp_path, argv):
    proc = start(tmp_path, *argv)
    output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 2
    assert "a COMMAND to run is required" in output
