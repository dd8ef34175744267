"""Helpers scripts/run.sh needs around honcho: who holds a port, waiting for the
app to answer, and the final sweep that leaves no process of a run behind.

  python scripts/stack.py check-port PORT WHAT VARIABLE   exit 1 with a message when PORT is taken
  python scripts/stack.py owner PORT                      print the process listening on PORT
  python scripts/stack.py wait-http URL PID [SECONDS]     exit 0 once URL answers, 1 if PID dies first
  python scripts/stack.py sweep TOKEN                     stop every process started with CALLIQ_RUN_TOKEN=TOKEN

Linux only where it reads /proc (the owner of a port, the sweep); elsewhere
those steps say nothing rather than fail. Standard library only.

Why the sweep: honcho stops each Procfile line by signalling its process group,
which covers gunicorn's and Celery's forked children. A process that leaves
its group (setsid, a daemonizing tool) would escape that, so run.sh gives
every process it starts an environment marker, CALLIQ_RUN_TOKEN, which every
descendant inherits, and after honcho returns stops whatever still carries
it, by PID.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

PROC = Path("/proc")


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when a server could listen on host:port now (as gunicorn, redis-server and the simulator do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in (PROC / "net" / table).read_text().splitlines()[1:]:
                fields = line.split()
                local, state, inode = fields[1], fields[3], fields[9]
                if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                    inodes.add(inode)
    return inodes


def _pids_holding(inodes: set[str]) -> list[int]:
    targets = {f"socket:[{inode}]" for inode in inodes}
    pids = []
    for entry in PROC.glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if any(os.readlink(fd) in targets for fd in (entry / "fd").iterdir()):
                pids.append(int(entry.name))
    return sorted(pids)


def _pids_from_ss(port: int) -> list[int]:
    if not shutil.which("ss"):
        return []
    result = subprocess.run(
        ["ss", "-Hltnp", f"sport = :{port}"], capture_output=True, text=True, timeout=5, check=False
    )
    return sorted({int(pid) for pid in re.findall(r"pid=(\d+)", result.stdout)})


def describe_pid(pid: int) -> str:
    """'pid 123: python manage.py provider_simulator (in /work/other-clone)' as far as /proc tells."""
    try:
        argv = (PROC / str(pid) / "cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        command = " ".join(part.decode("utf-8", "replace") for part in argv)
    except OSError:
        return f"pid {pid}"
    if len(command) > 160:
        command = command[:157] + "..."
    try:
        where = f" (in {os.readlink(PROC / str(pid) / 'cwd')})"
    except OSError:
        where = ""
    return f"pid {pid}: {command}{where}"


def port_owners(port: int) -> list[int]:
    """PIDs of the processes listening on port: /proc first, `ss -ltnp` when /proc hides them."""
    pids = _pids_holding(_listening_inodes(port)) if PROC.is_dir() else []
    if not pids:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            pids = _pids_from_ss(port)
    # Forked servers share the socket; the parent is the one to name.
    return [pid for pid in pids if _parent(pid) not in pids] or pids


def _parent(pid: int) -> int:
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return 0
    return int(stat.rsplit(")", 1)[1].split()[1])


def owner_text(port: int) -> str:
    pids = port_owners(port)
    if not pids:
        return f"a process this user cannot see (as root: ss -ltnp 'sport = :{port}')"
    return "; ".join(describe_pid(pid) for pid in pids)


def check_port(port: int, what: str, variable: str) -> int:
    if port_is_free(port):
        return 0
    print(
        f"==> ERROR: port {port} ({what}) is already in use, by {owner_text(port)}.\n"
        f"    Stop that process (kill PID), or choose another port: {variable}=<free port> make run",
        file=sys.stderr,
    )
    return 1


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def wait_http(url: str, pid: int, seconds: float) -> int:
    """Exit 0 once url answers with any HTTP status; 1 when pid exits or time runs out."""
    # Loopback only, and HTTPS runs use a self-signed certificate: answering is
    # what counts, so no verification and no following of redirects.
    opener = urllib.request.build_opener(
        urllib.request.HTTPSHandler(context=ssl._create_unverified_context()), _NoRedirect()
    )
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not _alive(pid) or _zombie(pid):
            return 1
        try:
            with opener.open(url, timeout=2):
                return 0
        except urllib.error.HTTPError:
            return 0
        except (urllib.error.URLError, OSError):
            time.sleep(0.5)
    return 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def marked_pids(token: str) -> list[int]:
    """PIDs whose environment carries CALLIQ_RUN_TOKEN=token (not this process or its parent)."""
    marker = f"CALLIQ_RUN_TOKEN={token}".encode()
    skip = {os.getpid(), os.getppid()}
    found = []
    for entry in PROC.glob("[0-9]*"):
        pid = int(entry.name)
        if pid in skip:
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "environ").read_bytes().split(b"\0"):
                found.append(pid)
    return sorted(found)


def tell(message: str) -> None:
    """Print, unless the console is gone (`make run | tee` after Ctrl-C): stopping matters more."""
    with contextlib.suppress(OSError):
        print(message, flush=True)


def sweep(token: str, grace: float = 3.0) -> int:
    """SIGTERM every process still marked with token, SIGKILL what outlives grace seconds."""
    if not token or not PROC.is_dir():
        return 0
    leftovers = marked_pids(token)
    for pid in leftovers:
        description = describe_pid(pid)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        tell(f"==> Stopped a leftover process of this run, {description}")
    deadline = time.monotonic() + grace
    while leftovers and time.monotonic() < deadline:
        time.sleep(0.1)
        leftovers = [pid for pid in leftovers if _alive(pid) and not _zombie(pid)]
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        tell(f"==> pid {pid} ignored SIGTERM for {grace:.0f} s: SIGKILL")
    return 0


def _zombie(pid: int) -> bool:
    if not PROC.is_dir():
        return False
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def main(argv: list[str]) -> int:
    usage = __doc__.split("\n\n")[1]
    if not argv:
        print(usage, file=sys.stderr)
        return 2
    command, args = argv[0], argv[1:]
    if command == "check-port" and len(args) == 3:
        return check_port(int(args[0]), args[1], args[2])
    if command == "owner" and len(args) == 1:
        print(owner_text(int(args[0])))
        return 0
    if command == "wait-http" and len(args) in (2, 3):
        return wait_http(args[0], int(args[1]), float(args[2]) if len(args) == 3 else 120.0)
    if command == "sweep" and len(args) == 1:
        return sweep(args[0])
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except KeyboardInterrupt:
        # Ctrl-C while run.sh waits for the app: run.sh's trap does the stopping.
        sys.exit(130)
