"""Built-in health checks. Each factory returns a check for ``register_health_check``.

Network and database checks run with instrumentation suppressed, so probing a dependency does
not add spans to the application's traces.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from opentelemetry.instrumentation.utils import suppress_instrumentation

from .host_health import CpuBusy, memory_utilization
from .system import filesystem_usage

CheckFn = Callable[[], Any]


def disk_space_check(path: str = "/", max_utilization: float = 0.95) -> CheckFn:
    """Fails when the filesystem holding ``path`` is at or above ``max_utilization`` (0..1) full."""

    def check() -> tuple[bool, dict[str, Any]]:
        usage = filesystem_usage(path)
        return usage.utilization < max_utilization, {"path": path, "utilization": round(usage.utilization, 4),
                                                     "free_bytes": usage.free, "max_utilization": max_utilization}

    return check


def memory_check(max_utilization: float = 0.95, read: Callable[[], float] | None = None) -> CheckFn:
    """Fails when memory use (1 - available/total) is at or above ``max_utilization``.
    ``read``: where the fraction comes from (default: psutil now)."""
    read = read or memory_utilization

    def check() -> tuple[bool, dict[str, Any]]:
        used = read()
        return used < max_utilization, {"utilization": round(used, 4), "max_utilization": max_utilization}

    return check


def cpu_check(max_utilization: float = 0.90, read: Callable[[], float] | None = None) -> CheckFn:
    """Fails when all CPUs were busy at or above ``max_utilization`` since the previous run (since boot at first).
    ``read``: where the busy fraction comes from (default: this check's own sampler)."""
    read = read or CpuBusy().read

    def check() -> tuple[bool, dict[str, Any]]:
        value = read()
        return value < max_utilization, {"utilization": round(value, 4), "max_utilization": max_utilization}

    return check


def tcp_check(host: str, port: int, timeout: float = 3.0) -> CheckFn:
    """Passes when a TCP connection to ``host:port`` opens within ``timeout`` seconds."""

    def check() -> tuple[bool, dict[str, Any]]:
        with suppress_instrumentation(), socket.create_connection((host, port), timeout=timeout):
            return True, {"address": f"{host}:{port}"}

    return check


def http_check(url: str, timeout: float = 5.0, expected_status: Callable[[int], bool] | None = None) -> CheckFn:
    """GET ``url``; passes on a 2xx or 3xx answer (or whatever ``expected_status(code)`` accepts)."""
    accept = expected_status or (lambda code: 200 <= code < 400)

    def check() -> tuple[bool, dict[str, Any]]:
        request = urllib.request.Request(url, headers={"User-Agent": "otel-monitoring-health-check"})  # noqa: S310 - the user's URL
        with suppress_instrumentation():
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - user's URL
                    code = response.status
            except urllib.error.HTTPError as error:
                code = error.code
        return accept(code), {"url": url, "status_code": code}

    return check


def sql_check(url_or_engine: Any, query: str = "SELECT 1") -> CheckFn:
    """Runs ``query`` (default ``SELECT 1``) through SQLAlchemy (``pip install otel-monitoring[sql]``)."""
    try:
        import sqlalchemy
    except ImportError:
        raise ImportError("sql_check needs SQLAlchemy: pip install 'otel-monitoring[sql]'") from None
    engine = sqlalchemy.create_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    statement = sqlalchemy.text(query)

    def check() -> tuple[bool, dict[str, Any]]:
        with suppress_instrumentation(), engine.connect() as connection:
            connection.execute(statement).scalar()
        return True, {"database": engine.url.render_as_string(hide_password=True)}

    return check


def _as_unix(value: Any) -> float:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.timestamp()
    number = float(value)
    return number / 1000.0 if number > 1e11 else number  # milliseconds (ccxt, JavaScript)


def freshness_check(source: str | os.PathLike[str] | Callable[[], Any], max_age_seconds: float) -> CheckFn:
    """Passes while the data source was updated less than ``max_age_seconds`` ago.

    ``source`` is a file (its modification time) or a callable returning the last update
    (unix seconds or milliseconds, or a datetime; naive datetimes are UTC).
    """

    def check() -> tuple[bool, dict[str, Any]]:
        if callable(source):
            updated = _as_unix(source())
        else:
            updated = os.stat(source).st_mtime
        age = max(0.0, time.time() - updated)
        return age < max_age_seconds, {"age_seconds": round(age, 3), "max_age_seconds": max_age_seconds}

    return check
