"""The manual API: ``traced`` (decorator and context manager) and ``record_operation``.

They replace home-made monitors (``@monitor_performance``,
``track_latency``, ``record_metric(duration, success)``) with the same span and RED metrics the
automatic instrumentation produces, so dashboards and alert rules treat both alike.

    @otel_monitoring.traced("signals", "compute_rsi")
    def compute_rsi(prices): ...

    with otel_monitoring.traced("risk", "check_limits") as span:
        span.set_attribute("trading.symbol", symbol)

    otel_monitoring.record_operation("feed", "reconnect", duration_s=1.8, success=False,
                                     error_type="TimeoutError")

Both follow the global providers, so a decorator applied at import time works once
``configure()`` runs later.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any, Callable, Mapping

from opentelemetry.context import attach, detach
from opentelemetry.trace import INVALID_SPAN, Span, SpanKind, Status, StatusCode

from .. import names
from .core import GlobalTelemetry, Operation, Target, instrumentation_suppressed, wrap

__all__ = ["traced", "record_operation", "Traced"]

_logger = logging.getLogger("otel_monitoring.instrumentation")

SCOPE = "otel_monitoring.instrumentation.manual"
_telemetry = GlobalTelemetry(SCOPE)

DOMAINS = ("trading", "rag", "api", "custom")


def _check_names(component: Any, operation: Any, domain: Any) -> None:
    for label, value in (("component", component), ("operation", operation)):
        if not isinstance(value, str) or not value:
            raise TypeError(f"traced(): {label} must be a non-empty string, got {value!r} "
                            "(e.g. traced('signals', 'compute_rsi'))")
    if domain not in DOMAINS:
        raise ValueError(f"traced(): domain must be one of {', '.join(DOMAINS)}, got {domain!r}")


class Traced:
    """One traced operation: a decorator for any callable and a (sync or async) context manager.

    As a context manager it yields the span; an exception inside the block marks the span ERROR
    and propagates. The same object may be entered from several threads or tasks at once.
    """

    def __init__(self, operation: Operation):
        self.operation = operation
        self._target: Target | None = None
        self._local = threading.local()

    @property
    def target(self) -> Target:
        if self._target is None:
            self._target = Target(self.operation, _telemetry)
        return self._target

    def __call__(self, function: Callable) -> Any:
        if not callable(function) and not isinstance(function, (classmethod, staticmethod)):
            raise TypeError(f"traced(...) decorates a callable, got {type(function).__name__}")
        return wrap(function, self.operation, _telemetry)

    # -- context manager --

    def __enter__(self) -> Span:
        stack = self._local.__dict__.setdefault("stack", [])
        if instrumentation_suppressed():
            stack.append(None)
            return INVALID_SPAN
        try:
            started = self.target.start(None, (), {})
            token = attach(started.context) if started is not None else None
        except Exception:  # noqa: BLE001 - instrumentation must never raise into the host application
            self.target.log_once("start", "starting the span failed")
            started = None
        if started is None:
            stack.append(None)
            return INVALID_SPAN
        stack.append((started, token))
        return started.span

    def __exit__(self, exc_type: Any, error: BaseException | None, traceback: Any) -> None:
        entry = self._local.stack.pop()
        if entry is None:
            return
        started, token = entry
        detach(token)
        self.target.finish(started, error, None, None, (), {})

    async def __aenter__(self) -> Span:
        return self.__enter__()

    async def __aexit__(self, exc_type: Any, error: BaseException | None, traceback: Any) -> None:
        self.__exit__(exc_type, error, traceback)


def traced(component: str, operation: str, *, domain: str = "custom", kind: SpanKind = SpanKind.INTERNAL,
           attributes: Mapping[str, Any] | None = None,
           metric_attributes: Mapping[str, str] | None = None) -> Traced:
    """Trace a function (decorator) or a block (``with``): one span named ``component.operation``
    and the RED metrics (``otel_monitoring.operation.duration``/``.calls``/``.errors``).

    ``attributes`` go on every span; ``metric_attributes`` (few, bounded values) also label the
    metrics. Works on functions, methods, class/static methods, coroutines and generators.
    """
    _check_names(component, operation, domain)
    return Traced(Operation(
        domain=domain, component=component, operation=operation, kind=kind,
        span_attributes=dict(attributes or {}), metric_attributes=dict(metric_attributes or {}),
    ))


# --- record_operation: durations measured elsewhere ---

_recording_targets: dict[tuple[str, str, str], Target] = {}
_recording_lock = threading.Lock()


def _recording_target(domain: str, component: str, operation: str) -> Target:
    key = (domain, component, operation)
    target = _recording_targets.get(key)
    if target is None:
        with _recording_lock:
            target = _recording_targets.get(key)
            if target is None:
                target = _recording_targets[key] = Target(
                    Operation(domain=domain, component=component, operation=operation), _telemetry)
    return target


def _metric_value(value: Any) -> Any:
    return value if isinstance(value, (str, bool, int)) else str(value)


def record_operation(component: str, operation: str, duration_s: float, success: bool = True, *,
                     domain: str = "custom", error_type: str | None = None, **attributes: Any) -> None:
    """Record an operation whose duration was measured elsewhere (a callback, another process).

    Produces the same RED metrics as ``traced`` and a span ending now that lasted ``duration_s``.
    ``attributes`` label the span and the metrics, so keep their values few (a symbol, a model;
    never an id): each (component, operation) keeps at most 200 attribute sets. Bad input is
    logged, never raised: monitoring must not break the caller.
    """
    try:
        _check_names(component, operation, domain)
        duration = float(duration_s)
        if not math.isfinite(duration) or duration < 0:
            raise ValueError(f"duration_s must be a finite number of seconds >= 0, got {duration_s!r}")
    except (TypeError, ValueError) as problem:
        _logger.warning("otel-monitoring: record_operation(%r, %r) ignored: %s", component, operation, problem)
        return
    target = _recording_target(domain, component, operation)
    try:
        state = target.state()
        if not state.enabled:
            return
        key = tuple(sorted((str(k), _metric_value(v)) for k, v in attributes.items()))
        series = target.series_for_key(state, key)
        if success:
            duration_series = series.ok_duration
            next(series.ok_calls)
        else:
            error_type = error_type or "error"
            _, counter, duration_series = series.error(error_type)
            next(counter)
        duration_series.record(duration)
        end = time.time_ns()
        span = state.tracer.start_span(target.span_name, kind=SpanKind.INTERNAL,
                                       attributes={**target.span_attributes, **dict(key)},
                                       start_time=end - int(duration * 1e9))
        if not success:
            span.set_attribute(names.ERROR_TYPE, error_type)  # type: ignore[arg-type]
            span.set_status(Status(StatusCode.ERROR, error_type))
        span.end(end_time=end)
    except Exception:  # noqa: BLE001 - instrumentation must never raise into the host application
        target.log_once("record", "record_operation failed")
