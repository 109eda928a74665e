"""One background program: started detached with its output in a log file, health-checked, stopped."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field


class StackError(RuntimeError):
    """A stack program failed to start or become healthy; the message carries its last log lines."""


@dataclass
class ProcessSpec:
    name: str
    argv: list[str]
    health_url: str
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (127.0.0.1 only)
            return 200 <= response.status < 300
    # HTTPException: something that is not an HTTP/1.1 server answered on the port (a gRPC server's
    # HTTP/2 frames, while the program we wait for has not bound it yet): not healthy, not a crash.
    except (urllib.error.URLError, OSError, ValueError, http.client.HTTPException):
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) is not alive for our purposes.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            return "".join(handle.readlines()[-lines:])
    except OSError:
        return ""


class ManagedProcess:
    """Start ``spec`` detached (its own session, so it outlives a CLI that started it), output to
    ``log_path``; ``start`` returns once ``spec.health_url`` answers 2xx."""

    def __init__(self, spec: ProcessSpec, log_path: str, pid_path: str | None = None) -> None:
        self.spec = spec
        self.log_path = log_path
        self.pid_path = pid_path
        self.popen: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def start(self, timeout: float = 60.0) -> "ManagedProcess":
        os.makedirs(os.path.dirname(os.path.abspath(self.log_path)), exist_ok=True)
        env = {**os.environ, **self.spec.env}
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(
                self.spec.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=env, cwd=self.spec.cwd, start_new_session=True,
            )
        if self.pid_path:
            with open(self.pid_path, "w", encoding="ascii") as handle:
                handle.write(f"{self.popen.pid}\n")
        try:
            self.wait_healthy(timeout)
        except StackError:
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise StackError(
                    f"{self.spec.name} exited with code {self.popen.returncode} while starting; "
                    f"log {self.log_path}:\n{tail(self.log_path)}"
                )
            if http_ok(self.spec.health_url):
                return
            time.sleep(0.1)
        raise StackError(
            f"{self.spec.name} was not healthy at {self.spec.health_url} after {timeout:.0f}s; "
            f"log {self.log_path}:\n{tail(self.log_path)}"
        )

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (the programs flush and shut down cleanly), SIGKILL after ``timeout``."""
        if self.popen is not None:
            stop_pid(self.popen.pid, timeout, self.popen)
            self.popen = None
        if self.pid_path and os.path.exists(self.pid_path):
            os.unlink(self.pid_path)


def stop_pid(pid: int, timeout: float = 15.0, popen: subprocess.Popen | None = None) -> bool:
    """Stop one process by pid; True if it was running. Reaps it when we are its parent."""
    if not pid_alive(pid):
        if popen is not None:
            popen.poll()
        return False
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen is not None and popen.poll() is not None:
            return True
        if popen is None and not pid_alive(pid):
            return True
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if popen is not None:
        popen.wait(timeout=5)
    return True
