"""Process, port and package helpers shared by the local-server starters."""

from __future__ import annotations

import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from pathlib import Path

HOST = "127.0.0.1"
# Root's own file (apt_install runs only as root), shared by every run on the machine.
APT_TURN = Path("/run/mailroom-apt.lock")
SBIN_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"])


def tool(name: str) -> str | None:
    """Find an executable, including the sbin directories a non-login shell may lack."""
    return shutil.which(name, path=SBIN_PATH)


def need_tool(name: str) -> str:
    """Like :func:`tool`, but raise when the executable is missing."""
    path = tool(name)
    if path is None:
        raise RuntimeError(f"{name} not found")
    return path


def run(args: Sequence[str], timeout: float, env: dict[str, str] | None = None) -> str:
    """Run a command to completion; raise with its output when it fails."""
    result = subprocess.run(
        list(args), capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    if result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip())[-2000:]
        raise RuntimeError(f"{' '.join(args)} exited {result.returncode}: {output}")
    return result.stdout


def run_quietly(args: Sequence[str], timeout: float) -> None:
    """Run a command whose failure is expected and harmless (e.g. stopping a stopped server)."""
    subprocess.run(list(args), capture_output=True, timeout=timeout, check=False)


def apt_install(*packages: str) -> None:
    """Install Debian packages non-interactively (refreshing the package lists first)."""
    if os.geteuid() != 0:
        raise RuntimeError(f"missing packages {packages} and not root: apt-get install them")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # Another run may be installing at the same moment: wait for the dpkg lock, don't fail.
    lock = ["-o", "DPkg::Lock::Timeout=300"]
    # Test workers of one run install side by side; apt's own lock timeout covers dpkg but
    # not the package lists that `update` rewrites, so they take turns here first.
    with APT_TURN.open("a") as turn:
        fcntl.flock(turn, fcntl.LOCK_EX)
        run(["apt-get", *lock, "update"], timeout=600, env=env)
        run(
            ["apt-get", *lock, "install", "-y", "--no-install-recommends", *packages],
            timeout=1200,
            env=env,
        )


def spawn(
    args: Sequence[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a server process with its output appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        # Own session: a Ctrl-C meant for pytest or the shell must not kill the server before
        # its owner stops it, and `up` must be able to exit while the server keeps running.
        return subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=env,
        )


def tail(log: Path, lines: int = 20) -> str:
    """The last lines of a log file, for error messages."""
    try:
        return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``check`` until it returns True; raise TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready after {timeout:.0f} s")
        time.sleep(0.1)


def alive_or_raise(proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    """Raise with the log's tail if ``proc`` has exited (it was meant to keep running)."""
    if proc.poll() is not None:
        raise RuntimeError(f"{what} exited with {proc.returncode}; {log}:\n{tail(log)}")


def listening(port: int) -> bool:
    """Whether something accepts TCP connections on 127.0.0.1:``port``."""
    try:
        socket.create_connection((HOST, port), timeout=0.5).close()
    except OSError:
        return False
    return True


def free_ports(count: int) -> list[int]:
    """Distinct ports free right now (all sockets are held together while picking)."""
    with ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((HOST, 0))
        return [int(sock.getsockname()[1]) for sock in socks]


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists and has not exited."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        # An exited server whose parent (`up`) is gone stays a zombie until init reaps it.
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] != "Z"


def cmdline_has(pid: int, marker: str) -> bool:
    """Guard against a recycled pid before signalling a process recorded earlier."""
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def stop_process(pid: int, proc: subprocess.Popen[bytes] | None, timeout: float = 15.0) -> None:
    """Stop a server: through its Popen when we own one, else by pid (after `up` exited)."""
    if proc is not None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        return
    if not pid_alive(pid):
        return
    os.kill(pid, signal.SIGTERM)
    try:
        wait_until(lambda: not pid_alive(pid), timeout, f"exit of pid {pid}")
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)
