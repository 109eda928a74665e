"""A registry of named health checks, sync or async, each run with a timeout.

A check is a callable (or coroutine function) taking no argument. It passes when it returns
``True`` or ``None``, fails when it returns ``False`` or raises; it may return ``(ok, detail)``
to add a detail (a dict or a string) to the report. A check that times out fails; a sync one
that is still stuck is not started again until it returns (threads cannot be killed).

Results become metrics (``otel_monitoring.health.check.status`` and ``.duration``), feed the
optional HTTP server (``health_server.py``) and ``run_health_checks()``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from opentelemetry.metrics import CallbackOptions, Observation, get_meter

from ..version import __version__
from .locks import ForkSafeLock, collecting
from .. import names as telemetry_names

_logger = logging.getLogger(__name__)

SCOPE = "otel_monitoring.meters.health"
NAME_ATTRIBUTE = telemetry_names.HEALTH_CHECK_NAME
DURATION_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class HealthCheck:
    name: str
    check: Callable[[], Any]
    timeout: float | None = None  # None: the registry's default
    critical: bool = True  # a failing non-critical check is reported but leaves the service healthy


@dataclass(frozen=True)
class CheckResult:
    name: str
    healthy: bool
    duration_s: float
    critical: bool = True
    detail: Any = None
    error: str | None = None
    timestamp: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"status": "healthy" if self.healthy else "unhealthy", "critical": self.critical,
                                "duration_ms": round(self.duration_s * 1000, 3),
                                "timestamp": round(self.timestamp, 3)}
        if self.detail is not None:
            data["detail"] = self.detail
        if self.error:
            data["error"] = self.error
        return data


def _interpret(value: Any) -> tuple[bool, Any]:
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], bool):
        return value
    if value is None or value is True:
        return True, None
    if value is False:
        return False, None
    return bool(value), value


def _call(check: Callable[[], Any], timeout: float) -> Any:
    """Run one check in the current (worker) thread; coroutines get their own event loop."""
    if inspect.iscoroutinefunction(check):
        return asyncio.run(asyncio.wait_for(check(), timeout))
    result = check()
    if inspect.isawaitable(result):
        async def wait() -> Any:
            return await asyncio.wait_for(result, timeout)

        return asyncio.run(wait())
    return result


class HealthRegistry:
    def __init__(self, default_timeout: float = 5.0):
        self.default_timeout = default_timeout
        self._checks: dict[str, HealthCheck] = {}
        self._inflight: dict[str, concurrent.futures.Future] = {}
        self._last: dict[str, CheckResult] = {}
        self._lock = ForkSafeLock()
        self._duration: Any = None

    # --- registration ---

    def register(self, name: str, check: Callable[[], Any], timeout: float | None = None,
                 critical: bool = True) -> None:
        if not callable(check):
            raise TypeError(f"health check {name!r} must be callable, got {type(check).__name__}")
        with self._lock:
            self._checks[name] = HealthCheck(name, check, timeout, critical)

    def unregister(self, name: str) -> None:
        with self._lock:
            self._checks.pop(name, None)
            self._last.pop(name, None)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._checks)

    # --- running ---

    def run(self) -> list[CheckResult]:
        """Run every check concurrently, each within its timeout; returns when all have a result."""
        with self._lock:
            checks = list(self._checks.values())
        started = time.perf_counter()
        pending: list[tuple[HealthCheck, float, concurrent.futures.Future | None]] = []
        for check in checks:
            timeout = check.timeout if check.timeout is not None else self.default_timeout
            with self._lock:
                previous = self._inflight.get(check.name)
                busy = previous is not None and not previous.done()
                future: concurrent.futures.Future | None = None if busy else concurrent.futures.Future()
                if future is not None:
                    self._inflight[check.name] = future
            if future is not None:
                self._start(check, timeout, future)  # outside the lock: starting a thread can take a while
            pending.append((check, timeout, future))
        results = []
        for check, timeout, future in pending:
            if future is None:
                result = CheckResult(check.name, False, 0.0, check.critical,
                                     error="the previous run is still in progress (it timed out)")
            else:
                remaining = max(0.0, started + timeout - time.perf_counter())
                try:
                    result = future.result(timeout=remaining)
                except concurrent.futures.TimeoutError:
                    result = CheckResult(check.name, False, timeout, check.critical,
                                         error=f"timed out after {timeout:g}s")
            results.append(result)
            self._record(result)
        return results

    def _start(self, check: HealthCheck, timeout: float, future: concurrent.futures.Future) -> None:
        """Run the check in a daemon thread: a check that never returns must not hold up the
        process at exit (a thread pool's workers are joined at exit)."""

        def run() -> None:
            future.set_result(self._timed(check, timeout))

        threading.Thread(target=run, name=f"otel-monitoring-health-{check.name}", daemon=True).start()

    def _timed(self, check: HealthCheck, timeout: float) -> CheckResult:
        begin = time.perf_counter()
        try:
            healthy, detail = _interpret(_call(check.check, timeout))
            error = None
        except (asyncio.TimeoutError, TimeoutError):
            healthy, detail, error = False, None, f"timed out after {timeout:g}s"
        except Exception as exc:  # noqa: BLE001 - a failing check is a result, not a crash
            healthy, detail, error = False, None, f"{type(exc).__name__}: {exc}"
        return CheckResult(check.name, healthy, time.perf_counter() - begin, check.critical, detail, error)

    def _record(self, result: CheckResult) -> None:
        with self._lock:
            if result.name in self._checks:
                self._last[result.name] = result
            duration = self._duration
        if duration is not None:
            duration.record(result.duration_s, {NAME_ATTRIBUTE: result.name})

    def last_results(self) -> dict[str, CheckResult]:
        with collecting(self._lock):
            return dict(self._last)

    # --- metrics ---

    def observe(self, meter_provider: Any = None) -> None:
        meter = get_meter(SCOPE, __version__, meter_provider)
        self._duration = meter.create_histogram(
            telemetry_names.HEALTH_CHECK_DURATION, unit="s", explicit_bucket_boundaries_advisory=DURATION_BUCKETS,
            description="Time one health check took.")
        meter.create_observable_gauge(telemetry_names.HEALTH_CHECK_STATUS, [self._observe_status], unit="1",
                                      description="1 if the health check passed on its last run, 0 if it failed.")

    def _observe_status(self, options: CallbackOptions) -> Iterable[Observation]:
        for name, result in self.last_results().items():
            yield Observation(1 if result.healthy else 0, {NAME_ATTRIBUTE: name})


def is_healthy(results: Iterable[CheckResult]) -> bool:
    return all(result.healthy for result in results if result.critical)


class HealthRunner:
    """Runs the registry's checks every ``interval`` seconds in a daemon thread (for the metrics)."""

    def __init__(self, registry: HealthRegistry, interval: float):
        self.registry, self.interval = registry, interval
        self._stop = threading.Event()
        self._thread = self._new_thread()

    def _new_thread(self) -> threading.Thread:
        return threading.Thread(target=self._loop, name="otel-monitoring-health-runner", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if hasattr(os, "register_at_fork"):  # threads do not survive a fork: the child starts its own
            runner = weakref.ref(self)
            os.register_at_fork(after_in_child=lambda: _restart_in_child(runner()))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.registry.names():
                    self.registry.run()
            except Exception:  # keep checking whatever one run did
                _logger.warning("otel-monitoring: health check run failed", exc_info=True)
            self._stop.wait(self.interval)

    def stop(self, timeout: float = 1.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


def _restart_in_child(runner: HealthRunner | None) -> None:
    if runner is not None and not runner._stop.is_set():
        runner._stop = threading.Event()
        runner._thread = runner._new_thread()
        runner._thread.start()


# The process' registry: checks can be registered before or after configure().
registry = HealthRegistry()


def register_health_check(name: str, check: Callable[[], Any], timeout: float | None = None,
                          critical: bool = True) -> None:
    """Add (or replace) a named check; see the module docstring for what a check returns."""
    registry.register(name, check, timeout, critical)


def run_health_checks() -> dict[str, Any]:
    """Run every check now: ``{"status": "healthy"|"unhealthy", "checks": {name: {...}}}``."""
    results = registry.run()
    return {"status": "healthy" if is_healthy(results) else "unhealthy",
            "checks": {result.name: result.as_dict() for result in results}}
