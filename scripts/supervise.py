"""Run one process of the development stack under honcho, and say why it ends.

Usage (one line of the Procfile):  python scripts/supervise.py [--restart] NAME -- COMMAND [ARG...]

The command's output goes to the console (honcho prefixes it with NAME) and to
var/log/NAME.log. When the command exits and the stack is not being stopped,
this prints which process it was, its PID, its exit status (with the signal's
name when a signal killed it) and the last lines of its log; then

- with --restart (the Celery worker and beat): starts it again after a short
  back-off, so a worker killed by the OOM killer does not take the web app
  down; after MAX_CRASHES crashes within CRASH_WINDOW seconds it gives up and
  exits non-zero, and honcho stops the whole stack;
- without it (web, simulator, private Redis): exits with the command's status,
  and honcho stops the whole stack.

The first process to stop the stack writes why to CALLIQ_STOP_REASON_FILE
(when run.sh sets it), so the console's last words name the cause.

Why a wrapper and not honcho alone: honcho, like foreman, treats the exit of
any process as the end of the formation (Manager.loop terminates every other
process) and has no restart policy (a --respawn option was proposed and never
merged). Keeping honcho's all-or-nothing semantics for the stack and putting a
small, per-process restart loop under it gives us restart-on-crash without
re-implementing honcho's process-group handling, output multiplexing or
Ctrl-C behaviour.

Stopping: honcho sends SIGTERM (then SIGKILL after 5 s) to each line's process
group, which holds this wrapper and the command with all its children. The
wrapper forwards SIGTERM/SIGINT to the command as well (in case it alone was
signalled), never restarts after one, and exits with the command's status.
Standard library only: it runs before anything else is known to work.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TextIO

TAIL_LINES = 20
MAX_CRASHES = 5
CRASH_WINDOW = 60.0
BACKOFF_MAX = 8.0


def describe_status(returncode: int) -> str:
    """'exit status 1' or 'killed by SIGKILL (signal 9)' for a Popen returncode."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"killed by {name} (signal {-returncode})"
    return f"exit status {returncode}"


class Supervisor:
    def __init__(self, name: str, command: list[str], log_path: Path, restart: bool) -> None:
        self.name = name
        self.command = command
        self.log_path = log_path
        self.restart = restart
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.crashes: collections.deque[float] = collections.deque()
        self.last_pid = 0

    def say(self, message: str) -> None:
        self.console(message if message.endswith("\n") else message + "\n")

    def console(self, text: str) -> None:
        """One write per message, so honcho prints whole lines. A console that is gone (honcho
        died) must not kill the supervisor: its command would be left without one."""
        with contextlib.suppress(OSError, ValueError):
            sys.stdout.write(text)
            sys.stdout.flush()

    def on_signal(self, signum: int, _frame: object) -> None:
        self.stopping = True
        child = self.child
        if child is not None and child.poll() is None:
            # The same signal as honcho's, so a child signalled twice (group + here) shuts down once.
            with contextlib.suppress(ProcessLookupError):
                child.send_signal(signal.SIGTERM)

    def pump(self, child: subprocess.Popen[bytes], log: TextIO) -> None:
        """Copy the child's output to the console and the log, keeping the tail."""
        assert child.stdout is not None
        for raw in iter(child.stdout.readline, b""):
            line = raw.decode("utf-8", "replace")
            self.tail.append(line.rstrip("\n"))
            self.console(line)
            # A SIGKILLed Celery worker's pool children may hold the pipe open after a
            # restart has closed this log: their last lines reach the console only.
            with contextlib.suppress(ValueError, OSError):
                log.write(line)
                log.flush()

    def run_once(self) -> int:
        self.tail.clear()
        with self.log_path.open("a", encoding="utf-8") as log:
            log.write(f"--- {time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(self.command)}\n")
            log.flush()
            try:
                child = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, bufsize=0)
            except OSError as exc:
                self.say(f"==> {self.name}: cannot start {self.command[0]}: {exc}")
                return 127
            self.child = child
            self.last_pid = child.pid
            pump = threading.Thread(target=self.pump, args=(child, log), daemon=True)
            pump.start()
            returncode = child.wait()
            # Grandchildren may keep the pipe open; the tail is what arrived by now.
            pump.join(timeout=2)
            return returncode

    def report(self, returncode: int) -> None:
        lines = "\n".join(f"    {line}" for line in self.tail) or "    (no output)"
        self.say(
            f"==> {self.name} (pid {self.last_pid}) exited: {describe_status(returncode)}.\n"
            f"==> Last lines of {self.log_path}:\n{lines}"
        )

    def record_stop_reason(self, returncode: int, how_often: str) -> None:
        """For run.sh's last words: the first process to stop the stack says so in CALLIQ_STOP_REASON_FILE."""
        path = os.environ.get("CALLIQ_STOP_REASON_FILE")
        if not path:
            return
        reason = f"{self.name} (pid {self.last_pid}) exited{how_often}: {describe_status(returncode)}; "
        reason += f"its last lines are above and in {self.log_path}\n"
        with contextlib.suppress(FileExistsError), open(path, "x", encoding="utf-8") as file:
            file.write(reason)

    def give_up(self) -> bool:
        now = time.monotonic()
        self.crashes.append(now)
        while self.crashes and now - self.crashes[0] > CRASH_WINDOW:
            self.crashes.popleft()
        return len(self.crashes) >= MAX_CRASHES

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_signal)
        signal.signal(signal.SIGINT, self.on_signal)
        while True:
            returncode = self.run_once()
            if self.stopping:
                return returncode
            self.report(returncode)
            if not self.restart:
                self.say(f"==> {self.name} is not restarted: stopping every process of the stack.")
                self.record_stop_reason(returncode, "")
                return returncode or 1
            if self.give_up():
                self.say(
                    f"==> {self.name} exited {len(self.crashes)} times within {CRASH_WINDOW:.0f} s: "
                    "giving up and stopping every process of the stack."
                )
                self.record_stop_reason(returncode, f" for the {len(self.crashes)}th time in {CRASH_WINDOW:.0f} s")
                return returncode or 1
            delay = min(BACKOFF_MAX, 2.0 ** (len(self.crashes) - 1))
            self.say(f"==> Restarting {self.name} in {delay:.0f} s (crash {len(self.crashes)} of {MAX_CRASHES}).")
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and not self.stopping:
                time.sleep(0.1)
            if self.stopping:
                return returncode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--restart", action="store_true", help="start the command again when it exits")
    parser.add_argument("--log-dir", default="var/log", help="where NAME.log goes (default var/log)")
    parser.add_argument("name")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a COMMAND to run is required after --")
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    supervisor = Supervisor(args.name, command, log_dir / f"{args.name}.log", args.restart)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
