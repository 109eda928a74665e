"""The one wrapper core: a wrapped call becomes one span and its RED metrics.

Everything that instruments code goes through here: the library instrumentors (ccxt,
langchain-core, chromadb), the targets file and the ``traced`` decorator. An ``Operation`` says
what a call is (domain, component, operation, span kind, how to read attributes from its
arguments and result); ``wrapper_for`` turns it into a wrapt wrapper function for a plain
function, method, class or static method, coroutine, or sync/async generator; ``Patcher`` puts
wrappers on classes and modules and takes every one off again, restoring the original objects.

The wrapper is the hottest path of the product, so everything that does not depend on the call
is computed once per target: span name, static span attributes, the metric attribute dicts per
outcome, the instruments. Call and error counts are per-series tallies (``itertools.count``,
bumped in C under the GIL) read by observable counters at collection time: a sync counter's
``add`` would cost as much as the histogram record.

Rules the wrapper keeps (the host application comes first):
- the suppression context key is checked before anything else (exporters, nested instrumentation);
- the user's exception propagates unchanged (same object, same traceback) and marks the span ERROR
  with the exception recorded and ``error.type``;
- an exception inside the instrumentation is caught, logged once per target, and the call proceeds;
- generators get their span from the first ``next()`` to exhaustion or ``close()``; the span's
  context is attached only while the generator body runs, never across a ``yield``, so a stream
  resumed in another task or closed by the garbage collector never fails to detach a context.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import itertools
import logging
import os
import pickle
import sys
import threading
import weakref
from dataclasses import dataclass, field
from time import perf_counter
from typing import Any, Callable, Iterable, Mapping, NamedTuple

import wrapt
from opentelemetry import metrics, trace
from opentelemetry import trace as _trace_api
from opentelemetry.metrics import _internal as _metrics_api_internal
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY, Context, attach, create_key, detach, get_current
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation import _SPAN_KEY  # the key set_span_in_context sets

from .. import preaggregation
from . import span_start
from ..preaggregation import AggregatedHistogram, HistogramSeries, span_ids
from ..version import __version__
from .. import names

__all__ = [
    "Operation",
    "Patcher",
    "Telemetry",
    "GlobalTelemetry",
    "Finished",
    "instrumentation_suppressed",
    "wrapper_for",
    "wrap",
]

_logger = logging.getLogger("otel_monitoring.instrumentation")

# contrib checks both the context key and its plain-string twin (set by older instrumentations).
_SUPPRESS_KEY = _SUPPRESS_INSTRUMENTATION_KEY
_SUPPRESS_KEY_PLAIN = "suppress_instrumentation"

_ACTIVE_OPERATION_KEY = create_key("otel_monitoring.active_operation")

MAX_SERIES_PER_TARGET = 200  # distinct call-derived metric attribute sets before overflow
MAX_ERROR_TYPES_PER_SERIES = 32  # distinct error.type values before "_OTHER"
OTHER_ERROR_TYPE = "_OTHER"


def instrumentation_suppressed() -> bool:
    """True inside ``suppress_instrumentation()`` (exporters, and instrumentation calling itself)."""
    ctx = get_current()
    return bool(ctx.get(_SUPPRESS_KEY) or ctx.get(_SUPPRESS_KEY_PLAIN))


def _passes_through(target: "Target") -> bool:
    """Suppressed, or nested in a call of the same ``nesting_key``: call the original untraced."""
    ctx = get_current()
    if ctx.get(_SUPPRESS_KEY) or ctx.get(_SUPPRESS_KEY_PLAIN):
        return True
    return target.nesting_key is not None and ctx.get(_ACTIVE_OPERATION_KEY) == target.nesting_key


def settings_from(kwargs: Mapping[str, Any]) -> Any:
    """The ``settings=`` an instrumentor got from configure(), else the ones the environment gives
    (under ``opentelemetry-instrument``, instrumentors get no arguments)."""
    settings = kwargs.get("settings")
    if settings is None:
        from ..config import load_settings

        settings = load_settings()
    return settings


def _span_seconds(span: Any, measured: float) -> float:
    """The ended span's duration in seconds; ``measured`` when the span keeps no times (not sampled)."""
    start, end = getattr(span, "_start_time", None), getattr(span, "_end_time", None)  # the SDK span's own
    if start is None:
        start, end = getattr(span, "start_time", None), getattr(span, "end_time", None)
    if isinstance(start, int) and isinstance(end, int) and end >= start:
        return (end - start) / 1e9
    return measured


def error_type_of(error: BaseException) -> str:
    """``error.type``: the exception's class name (ccxt's InsufficientFunds, RateLimitExceeded...)."""
    return type(error).__qualname__


class Finished(NamedTuple):
    """What a domain's ``on_finish`` hook sees after a call (GenAI token metrics, market-data age).
    A named tuple: made on every call, it costs a third of a frozen dataclass."""

    duration: float
    error_type: str | None
    metric_attributes: Mapping[str, Any]  # the call's RED metric attributes, outcome included
    result: Any
    instance: Any
    args: tuple
    kwargs: dict
    span: Any
    # The call's context (its span current): metrics recorded in it take the call's span as exemplar.
    context: Any = None
    # ``preaggregation.span_ids(span)``, read once: give it to ``HistogramSeries.record`` as the exemplar.
    exemplar: Any = None


def _context_functions() -> tuple[Callable[[Any], Any], Callable[[Any], None]]:
    """attach and detach for a synchronous call: the context variable's own ``set``/``reset`` when
    the API runs on contextvars (its default), without the API's two extra frames per call."""
    from opentelemetry import context as context_api

    runtime = getattr(context_api, "_RUNTIME_CONTEXT", None)
    variable = getattr(runtime, "_current_context", None)
    if type(runtime).__name__ != "ContextVarsRuntimeContext" or variable is None:
        return attach, detach

    reset = variable.reset

    def detach_token(token: Any) -> None:
        try:
            reset(token)
        except Exception:  # noqa: BLE001 - as the API's detach: logged, never raised
            detach(token)

    return variable.set, detach_token


_attach, _detach = _context_functions()


class Started(NamedTuple):
    """A started call, from ``Target.start`` to ``Target.finish``."""

    span: Any
    context: Any  # the caller's context with the span (and the nesting key) set; attached around the call
    series: Any  # the RED metric series the call is counted in
    state: Any  # the target's providers and instruments
    start_time: float  # perf_counter() at the start


_new_started = tuple.__new__  # Started's fields in order, without the NamedTuple's Python-level __new__



@dataclass(frozen=True)
class Operation:
    """What one wrapped callable is: names, span kind and how to read attributes.

    The callables get ``(instance, args, kwargs)`` of the call as wrapt passes them (``args``
    without ``self``); ``result_attributes`` gets ``(result, instance, args, kwargs)``. They run
    only when the span is recording, except ``call_metric_attributes`` and ``on_finish`` which feed
    metrics. Whatever they raise is caught and logged once; the user's call is never affected.
    """

    domain: str  # trading | rag | api | custom
    component: str
    operation: str
    kind: SpanKind = SpanKind.INTERNAL
    span_name: str | None = None  # default "{component}.{operation}"
    span_attributes: Mapping[str, Any] = field(default_factory=dict)  # static, on every span
    metric_attributes: Mapping[str, Any] = field(default_factory=dict)  # static, low-cardinality
    span_name_from_call: Callable[[Any, tuple, dict], str | None] | None = None
    call_attributes: Callable[[Any, tuple, dict], Mapping[str, Any] | None] | None = None
    # Low-cardinality metric attributes from the call, as a hashable tuple of (key, value) pairs.
    call_metric_attributes: Callable[[Any, tuple, dict], tuple | None] | None = None
    result_attributes: Callable[[Any, Any, tuple, dict], Mapping[str, Any] | None] | None = None
    on_finish: Callable[[Finished], None] | None = None
    # Calls made inside a call with the same key pass through untraced: an override calling
    # ``super().method()``, or a library method calling its own twin, gives one span, not two.
    nesting_key: str | None = None
    # For generators: folds the items into the "result" that result_attributes and on_finish see
    # (e.g. langchain message chunks added up, usage included); without it they see None.
    stream_reducer: Callable[[Any, Any], Any] | None = None

    @property
    def name(self) -> str:
        return self.span_name or f"{self.component}.{self.operation}"


# --- metrics: one set of RED instruments per (meter provider, scope) ---


def _count_value(counter: itertools.count) -> int:
    # itertools.count has no public read; its repr is "count(N)" in every CPython version.
    return int(repr(counter)[6:-1])


class _Series:
    """One low-cardinality metric attribute set of one target, with its call tallies per outcome."""

    __slots__ = ("base", "ok_attributes", "ok_calls", "ok_duration", "errors", "_lock", "_duration")

    def __init__(self, base: dict[str, Any], lock: threading.Lock, duration: AggregatedHistogram):
        self.base = base
        self.ok_attributes = {**base, names.OUTCOME: names.OUTCOME_SUCCESS}
        self.ok_calls = itertools.count()
        self.ok_duration = duration.series(self.ok_attributes)
        self.errors: dict[str, tuple[dict[str, Any], itertools.count, HistogramSeries]] = {}
        self._lock = lock
        self._duration = duration

    def error(self, error_type: str) -> tuple[dict[str, Any], itertools.count, HistogramSeries]:
        """The attributes, call tally and duration series of one ``error.type``."""
        entry = self.errors.get(error_type)
        if entry is None:
            with self._lock:
                if error_type not in self.errors and len(self.errors) >= MAX_ERROR_TYPES_PER_SERIES:
                    error_type = OTHER_ERROR_TYPE
                entry = self.errors.get(error_type)
                if entry is None:
                    attributes = {**self.base, names.OUTCOME: names.OUTCOME_ERROR, names.ERROR_TYPE: error_type}
                    entry = self.errors[error_type] = (attributes, itertools.count(),
                                                       self._duration.series(attributes))
        return entry


class Instruments:
    """The RED instruments of one meter and the tallies its observable counters report."""

    def __init__(self, meter_provider: Any, scope: str):
        # Aggregated here and handed to the readers at collection time (see preaggregation).
        self.duration = preaggregation.histogram(
            meter_provider, scope, names.OPERATION_DURATION, unit="s", version=__version__,
            description="Duration of instrumented operations (trading, RAG, API, custom calls).",
            boundaries=names.DURATION_BUCKETS,
        )
        meter = meter_provider.get_meter(scope, __version__)
        self._series: list[_Series] = []
        self._lock = threading.Lock()
        meter.create_observable_counter(
            names.OPERATION_CALLS, callbacks=[self._observe_calls], unit="{call}",
            description="Instrumented operations called, by outcome.",
        )
        meter.create_observable_counter(
            names.OPERATION_ERRORS, callbacks=[self._observe_errors], unit="{error}",
            description="Instrumented operations that raised, by error.type.",
        )

    def new_series(self, base: dict[str, Any]) -> _Series:
        series = _Series(base, self._lock, self.duration)
        with self._lock:
            self._series.append(series)
        return series

    def _observe_calls(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            series_list = list(self._series)
        for series in series_list:
            calls = _count_value(series.ok_calls)
            if calls:
                yield Observation(calls, series.ok_attributes)
            for attributes, counter, _ in list(series.errors.values()):
                yield Observation(_count_value(counter), attributes)

    def _observe_errors(self, options: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            series_list = list(self._series)
        for series in series_list:
            for attributes, counter, _ in list(series.errors.values()):
                yield Observation(_count_value(counter), attributes)


_instruments_lock = threading.Lock()
_instruments: "weakref.WeakKeyDictionary[Any, dict[str, Instruments]]" = weakref.WeakKeyDictionary()


def instruments_for(meter_provider: Any, scope: str) -> Instruments:
    """The one ``Instruments`` of a (meter provider, scope): creating an observable counter twice
    would keep only the first one's callbacks."""
    with _instruments_lock:
        by_scope = _instruments.setdefault(meter_provider, {})
        found = by_scope.get(scope)
        if found is None:
            found = by_scope[scope] = Instruments(meter_provider, scope)
        return found


class Telemetry:
    """A tracer and the RED instruments of one instrumentation scope, from explicit providers
    (the contrib ``tracer_provider=`` / ``meter_provider=`` convention) or the global ones."""

    def __init__(self, scope: str, tracer_provider: Any = None, meter_provider: Any = None,
                 follow_globals: bool = False):
        self.scope = scope
        self.tracer_provider = tracer_provider or trace.get_tracer_provider()
        self.meter_provider = meter_provider or metrics.get_meter_provider()
        self.tracer = self.tracer_provider.get_tracer(scope, __version__)
        self.meter = self.meter_provider.get_meter(scope, __version__)
        # With no-op providers (OTEL_SDK_DISABLED), or, when following the globals, none set yet,
        # wrapped calls go straight through. No instruments are made then: instruments made on the
        # API's proxy meter would come back instead of ours once the SDK is set, without our callbacks.
        noop = (isinstance(self.tracer_provider, trace.NoOpTracerProvider)
                and isinstance(self.meter_provider, metrics.NoOpMeterProvider))
        unset = (follow_globals and isinstance(self.tracer_provider, trace.ProxyTracerProvider)
                 and type(self.meter_provider).__name__ == "_ProxyMeterProvider")
        self.enabled = not (noop or unset)
        self.instruments = instruments_for(self.meter_provider, scope) if self.enabled else None
        self.sdk_disabled = False

    def current(self) -> "Telemetry":
        return self


def _sdk_disabled() -> bool:
    """``OTEL_SDK_DISABLED``, read as the SDK reads it (its providers are no-ops then)."""
    return os.environ.get("OTEL_SDK_DISABLED", "false").strip().lower() == "true"


_global_telemetries: "weakref.WeakSet[GlobalTelemetry]" = weakref.WeakSet()


def refresh_globals() -> None:
    """Make every ``GlobalTelemetry`` look at the environment and the global providers again
    (``configure()`` calls it; so can a test that changes ``OTEL_SDK_DISABLED``)."""
    for telemetry in list(_global_telemetries):
        telemetry._current = None


class GlobalTelemetry:
    """Follows the global providers: for decorators applied at import time, before ``configure()``.

    Per call it reads two module attributes (the API's provider slots), never ``os.environ`` as the
    API's getters do while no provider is set; with ``OTEL_SDK_DISABLED=true`` (read once) it reads
    nothing at all: the SDK's providers are no-ops then, whoever sets them.
    """

    def __init__(self, scope: str):
        self.scope = scope
        self._current: Telemetry | None = None
        self._slots: tuple[Any, Any] = (None, None)
        self._lock = threading.Lock()
        _global_telemetries.add(self)

    def current(self) -> Telemetry:
        current = self._current
        if current is not None:
            if current.sdk_disabled:
                return current
            if (_trace_api._TRACER_PROVIDER is self._slots[0]
                    and _metrics_api_internal._METER_PROVIDER is self._slots[1]):
                return current
        with self._lock:
            slots = (_trace_api._TRACER_PROVIDER, _metrics_api_internal._METER_PROVIDER)
            current = Telemetry(self.scope, trace.get_tracer_provider(), metrics.get_meter_provider(),
                                follow_globals=True)
            current.sdk_disabled = _sdk_disabled()
            if current.sdk_disabled:
                current.enabled = False
            self._current, self._slots = current, slots
        return current


# --- one target: the precomputed state of one wrapped callable ---


class _State:
    """Per (target, telemetry): the series cache. Rebuilt only when the global providers change."""

    __slots__ = ("telemetry", "enabled", "tracer", "start_span", "duration", "default_series", "series_by_key")

    def __init__(self, telemetry: Telemetry, base: dict[str, Any], span_attributes: dict[str, Any]):
        self.telemetry = telemetry
        self.enabled = telemetry.enabled
        self.tracer = telemetry.tracer
        # start_span(name, context, kind) with the target's static attributes, cleaned once
        self.start_span = span_start.starter(telemetry.tracer, span_attributes) if telemetry.enabled else None
        instruments = telemetry.instruments
        self.duration = instruments.duration if instruments is not None else None
        self.default_series = instruments.new_series(base) if instruments is not None else None
        self.series_by_key: dict[tuple, _Series] = {}


class Target:
    """An ``Operation`` bound to a telemetry source, with everything per-call work can reuse."""

    def __init__(self, operation: Operation, telemetry: Telemetry | GlobalTelemetry):
        self.operation = operation
        self.span_name = operation.name
        self.kind = operation.kind
        self.span_attributes = {
            names.SPAN_COMPONENT: operation.component,
            names.SPAN_OPERATION: operation.operation,
            **operation.span_attributes,
        }
        self.base_metric_attributes = {
            names.DOMAIN: operation.domain,
            names.COMPONENT: operation.component,
            names.OPERATION: operation.operation,
            **operation.metric_attributes,
        }
        self.span_name_from_call = operation.span_name_from_call
        self.call_attributes = operation.call_attributes
        self.call_metric_attributes = operation.call_metric_attributes
        self.result_attributes = operation.result_attributes
        self.on_finish = operation.on_finish
        self.nesting_key = operation.nesting_key
        self.stream_reducer = operation.stream_reducer
        self._source = telemetry
        self._fixed = isinstance(telemetry, Telemetry)
        self._state = _State(telemetry.current(), self.base_metric_attributes, self.span_attributes) if self._fixed else None
        self._lock = threading.Lock()
        self._logged: set[str] = set()

    # -- state --

    def fixed_state(self) -> _State | None:
        """The state of a target bound to explicit providers (it never changes), else None."""
        return self._state if self._fixed else None

    def state(self) -> _State:
        if self._fixed:
            return self._state  # type: ignore[return-value]
        telemetry = self._source.current()
        state = self._state
        if state is None or state.telemetry is not telemetry:
            with self._lock:
                state = self._state = _State(telemetry, self.base_metric_attributes, self.span_attributes)
        return state

    def series(self, state: _State, instance: Any, args: tuple, kwargs: dict) -> _Series:
        return self.series_for_key(state, self.call_metric_attributes(instance, args, kwargs))  # type: ignore[misc]

    def series_for_key(self, state: _State, key: tuple | None) -> _Series:
        """The series of the call-derived metric attributes ``key``, a tuple of (key, value) pairs."""
        if not key:
            return state.default_series
        series = state.series_by_key.get(key)
        if series is None:
            with self._lock:
                series = state.series_by_key.get(key)
                if series is None:
                    if len(state.series_by_key) >= MAX_SERIES_PER_TARGET:
                        self.log_once("series", f"more than {MAX_SERIES_PER_TARGET} metric attribute sets; "
                                      "further ones are counted without their call attributes")
                        return state.default_series
                    series = state.series_by_key[key] = state.telemetry.instruments.new_series(
                        {**self.base_metric_attributes, **dict(key)})
        return series

    # -- the call --

    def start(self, instance: Any, args: tuple, kwargs: dict, parent: Any = None, state: _State | None = None,
              current: Any = None) -> Started | None:
        """Start the span (not attached), or None when there is nothing to record (no-op providers).
        ``state`` and ``current`` (the current context), when the caller has read them already."""
        if state is None:
            state = self._state if self._fixed else self.state()
        if not state.enabled:
            return None
        name = self.span_name
        if self.span_name_from_call is not None:
            try:
                name = self.span_name_from_call(instance, args, kwargs) or name
            except Exception:  # noqa: BLE001 - the static name will do
                self.log_once("name", "naming the span from the call failed")
        span = state.start_span(name, parent, self.kind, current)
        # Once the span exists, a failing reader costs its attributes, never the span.
        if self.call_attributes is not None and span.is_recording():
            try:
                extra = self.call_attributes(instance, args, kwargs)
                if extra:
                    span.set_attributes(extra)
            except Exception:  # noqa: BLE001 - instrumentation must never raise into the host application
                self.log_once("arguments", "reading attributes from the arguments failed")
        series = state.default_series
        if self.call_metric_attributes is not None:
            try:
                series = self.series(state, instance, args, kwargs)
            except Exception:  # noqa: BLE001 - instrumentation must never raise into the host application
                self.log_once("metric attributes", "reading metric attributes from the arguments failed")
        # The caller's context with the span (and the nesting key) set: one copy, as
        # set_span_in_context and set_value would make one each.
        values = dict(parent if parent is not None else current if current is not None else get_current())
        values[_SPAN_KEY] = span
        if self.nesting_key is not None:
            values[_ACTIVE_OPERATION_KEY] = self.nesting_key
        return _new_started(Started, (span, Context(values), series, state, perf_counter()))

    def finish(self, started: Started, error: BaseException | None, result: Any,
               instance: Any, args: tuple, kwargs: dict) -> None:
        """End the span and record the metrics. Never raises."""
        duration = perf_counter() - started.start_time
        span, series = started.span, started.series
        try:
            if error is None:
                attributes = series.ok_attributes
                duration_series = series.ok_duration
                next(series.ok_calls)
                if self.result_attributes is not None and span.is_recording():
                    try:
                        extra = self.result_attributes(result, instance, args, kwargs)
                        if extra:
                            if len(extra) == 1:  # the common case; a mapping costs the SDK two ABC checks
                                span.set_attribute(*next(iter(extra.items())))
                            else:
                                span.set_attributes(extra)
                    except Exception:  # noqa: BLE001 - a bad result reader must not lose the span
                        self.log_once("result", "reading attributes from the result failed")
                error_type = None
            else:
                error_type = error_type_of(error)
                attributes, counter, duration_series = series.error(error_type)
                next(counter)
                if span.is_recording():
                    span.set_attribute(names.ERROR_TYPE, error_type)
                    span.record_exception(error)
                    span.set_status(Status(StatusCode.ERROR, f"{error_type}: {error}"))
            span.end()
            # One truth for a call's duration: the span's own (as Jaeger, the files and the
            # span-metrics show it), so every histogram puts the call in that duration's bucket.
            duration = _span_seconds(span, duration)
            # With the span, so a sampled span becomes this measurement's exemplar.
            exemplar = span_ids(span)
            duration_series.record(duration, exemplar)
            if self.on_finish is not None:
                self.on_finish(Finished(duration, error_type, attributes, result, instance, args, kwargs, span,
                                        started.context, exemplar))
        except Exception:  # noqa: BLE001 - instrumentation must never raise into the host application
            self.log_once("finish", "recording the call failed")

    def reduce(self, accumulated: Any, item: Any) -> Any:
        """Fold one stream item into the stream's result (see ``Operation.stream_reducer``)."""
        try:
            return self.stream_reducer(accumulated, item)  # type: ignore[misc]
        except Exception:  # noqa: BLE001 - the stream goes on, its result attributes are lost
            self.log_once("stream", "folding a stream item failed")
            return accumulated

    def log_once(self, what: str, message: str) -> None:
        """Log an instrumentation failure with its traceback once per target and kind; later ones at debug."""
        first = what not in self._logged
        self._logged.add(what)
        (_logger.warning if first else _logger.debug)(
            "otel-monitoring: %s for %s (the call itself proceeds; further occurrences are logged at debug)",
            message, self.span_name, exc_info=sys.exc_info()[0] is not None,  # no "NoneType: None" line
        )


# --- the wrappers ---


def _call_kind(function: Any) -> str:
    function = getattr(function, "__func__", function)  # classmethod / staticmethod / bound method
    if inspect.isasyncgenfunction(function):
        return "async_generator"
    if inspect.iscoroutinefunction(function):
        return "coroutine"
    if inspect.isgeneratorfunction(function):
        return "generator"
    return "function"


def wrapper_for(target: Target, function: Any) -> Callable[[Any, Any, tuple, dict], Any]:
    """The wrapt wrapper function ``(wrapped, instance, args, kwargs)`` for ``function``."""
    return _WRAPPER_FACTORIES[_call_kind(function)](target)


def _function_wrapper(target: Target) -> Callable:
    start, finish = target.start, target.finish

    nesting_key = target.nesting_key

    state = target.state
    fixed = target.fixed_state()  # explicit providers: the state never changes, no call to read it

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        current_state = fixed or state()
        if not current_state.enabled:  # no SDK, or OTEL_SDK_DISABLED: straight through, nothing read
            return wrapped(*args, **kwargs)
        ctx = get_current()
        if ctx.get(_SUPPRESS_KEY) or ctx.get(_SUPPRESS_KEY_PLAIN) or (
                nesting_key is not None and ctx.get(_ACTIVE_OPERATION_KEY) == nesting_key):
            return wrapped(*args, **kwargs)
        try:
            started = start(instance, args, kwargs, None, current_state, ctx)
            token = _attach(started.context) if started is not None else None
        except Exception:  # noqa: BLE001 - instrumentation must never raise into the host application
            target.log_once("start", "starting the span failed")
            return wrapped(*args, **kwargs)
        if started is None:
            return wrapped(*args, **kwargs)
        try:
            result = wrapped(*args, **kwargs)
        except BaseException as error:
            _detach(token)
            finish(started, error, None, instance, args, kwargs)
            raise
        _detach(token)
        finish(started, None, result, instance, args, kwargs)
        return result

    return wrapper


def _coroutine_wrapper(target: Target) -> Callable:
    start, finish = target.start, target.finish

    async def traced_call(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        try:
            started = start(instance, args, kwargs)
            token = attach(started.context) if started is not None else None
        except Exception:  # noqa: BLE001 - instrumentation must never raise into the host application
            target.log_once("start", "starting the span failed")
            return await wrapped(*args, **kwargs)
        if started is None:
            return await wrapped(*args, **kwargs)
        try:
            result = await wrapped(*args, **kwargs)
        except BaseException as error:
            detach(token)
            finish(started, error, None, instance, args, kwargs)
            raise
        detach(token)
        finish(started, None, result, instance, args, kwargs)
        return result

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        if not target.state().enabled or _passes_through(target):
            return wrapped(*args, **kwargs)
        return traced_call(wrapped, instance, args, kwargs)

    return wrapper


def _generator_wrapper(target: Target) -> Callable:
    def traced_stream(generator: Any, parent: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        try:
            started = target.start(instance, args, kwargs, parent)
        except Exception:  # noqa: BLE001 - instrumentation must never raise into the host application
            target.log_once("start", "starting the span failed")
            started = None
        if started is None:
            return (yield from generator)
        ctx = started.context
        reduce = target.reduce if target.stream_reducer is not None else None
        result: Any = None
        to_send: Any = None
        to_throw: BaseException | None = None
        try:
            while True:
                token = attach(ctx)
                try:
                    item = generator.send(to_send) if to_throw is None else generator.throw(to_throw)
                finally:
                    detach(token)
                if reduce is not None:
                    result = reduce(result, item)
                to_send, to_throw = None, None
                try:
                    to_send = yield item
                except GeneratorExit:
                    raise
                except BaseException as thrown:  # noqa: BLE001 - thrown in by the consumer: pass it on
                    to_throw = thrown
        except StopIteration as stop:
            target.finish(started, None, result, instance, args, kwargs)
            return stop.value
        except GeneratorExit:  # closed early by the consumer (or the garbage collector)
            token = attach(ctx)
            try:
                generator.close()
            finally:
                detach(token)
                target.finish(started, None, result, instance, args, kwargs)
            raise
        except BaseException as error:
            target.finish(started, error, None, instance, args, kwargs)
            raise

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        generator = wrapped(*args, **kwargs)
        if not target.state().enabled or _passes_through(target):
            return generator
        return traced_stream(generator, get_current(), instance, args, kwargs)

    return wrapper


def _async_generator_wrapper(target: Target) -> Callable:
    async def traced_stream(generator: Any, parent: Any, instance: Any, args: tuple, kwargs: dict) -> Any:
        try:
            started = target.start(instance, args, kwargs, parent)
        except Exception:  # noqa: BLE001 - instrumentation must never raise into the host application
            target.log_once("start", "starting the span failed")
            started = None
        if started is None:
            async for item in generator:  # untraced (a consumer's send/throw are not forwarded here)
                yield item
            return
        ctx = started.context
        reduce = target.reduce if target.stream_reducer is not None else None
        result: Any = None
        to_send: Any = None
        to_throw: BaseException | None = None
        try:
            while True:
                token = attach(ctx)
                try:
                    if to_throw is None:
                        item = await generator.asend(to_send)
                    else:
                        item = await generator.athrow(to_throw)
                finally:
                    detach(token)
                if reduce is not None:
                    result = reduce(result, item)
                to_send, to_throw = None, None
                try:
                    to_send = yield item
                except GeneratorExit:
                    raise
                except BaseException as thrown:  # noqa: BLE001 - thrown in by the consumer: pass it on
                    to_throw = thrown
        except StopAsyncIteration:
            target.finish(started, None, result, instance, args, kwargs)
        except GeneratorExit:
            token = attach(ctx)
            try:
                await generator.aclose()
            finally:
                detach(token)
                target.finish(started, None, result, instance, args, kwargs)
            raise
        except BaseException as error:
            target.finish(started, error, None, instance, args, kwargs)
            raise

    def wrapper(wrapped: Callable, instance: Any, args: tuple, kwargs: dict) -> Any:
        generator = wrapped(*args, **kwargs)
        if not target.state().enabled or _passes_through(target):
            return generator
        return traced_stream(generator, get_current(), instance, args, kwargs)

    return wrapper


_WRAPPER_FACTORIES: dict[str, Callable[[Target], Callable]] = {
    "function": _function_wrapper,
    "coroutine": _coroutine_wrapper,
    "generator": _generator_wrapper,
    "async_generator": _async_generator_wrapper,
}


# --- pickling and copying: an instrumented callable behaves as the plain one would ---


def resolve_qualified(module: str, qualname: str) -> Any:
    """The object at ``module.qualname`` (what pickle does for a function, for our wrappers)."""
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    return found


def _reduce_unbound(wrapper: Any) -> tuple:
    wrapped = wrapper.__wrapped__
    wrapped = getattr(wrapped, "__func__", wrapped)  # classmethod / staticmethod objects
    module, qualname = getattr(wrapped, "__module__", None), getattr(wrapped, "__qualname__", None)
    if not module or not qualname or "<locals>" in qualname:
        raise pickle.PicklingError(f"Can't pickle {wrapped!r}: it is not importable as {module}.{qualname}")
    return resolve_qualified, (module, qualname)


class _BoundWrapper(wrapt.BoundFunctionWrapper):
    """A wrapped method bound to an instance (or a class): pickled and copied as a bound method is,
    by its instance and name, so it unpickles to the (instrumented) method of that instance."""

    def __reduce_ex__(self, protocol: int) -> tuple:
        instance = self._self_instance
        if instance is None:
            return _reduce_unbound(self)
        return getattr, (instance, self.__name__)

    def __reduce__(self) -> tuple:
        return self.__reduce_ex__(2)

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict) -> Any:
        instance = self._self_instance
        if instance is None or isinstance(instance, type):
            return self
        return getattr(copy.deepcopy(instance, memo), self.__name__)


class InstrumentedFunction(wrapt.FunctionWrapper):
    """The wrapper every instrumented callable is: pickled by reference (module and qualified name)
    like the function it wraps, copied as itself, as functions are."""

    __bound_function_wrapper__ = _BoundWrapper

    def __reduce_ex__(self, protocol: int) -> tuple:
        return _reduce_unbound(self)

    def __reduce__(self) -> tuple:
        return _reduce_unbound(self)

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict) -> Any:
        return self


def wrap(function: Any, operation: Operation, telemetry: Telemetry | GlobalTelemetry) -> InstrumentedFunction:
    """``function`` wrapped for ``operation`` (a decorator's work; ``Patcher`` does it in place)."""
    return InstrumentedFunction(function, wrapper_for(Target(operation, telemetry), function))


_NOT_DEFINED = object()


class Patcher:
    """Puts wrappers on attributes of classes and modules and restores the exact originals.

    Only attributes defined on the owner itself are wrapped (``vars(owner)``): an override in a
    subclass is a different function and gets its own wrapper, and restoring sets back the very
    object (function, classmethod, staticmethod) that was there.
    """

    def __init__(self) -> None:
        self._patches: list[tuple[Any, str, Any]] = []
        self._patched: set[tuple[int, str]] = set()

    def wrap(self, owner: Any, name: str, operation: Operation, telemetry: Telemetry | GlobalTelemetry,
             inherited: Any = None) -> bool:
        """Wrap ``owner.name`` if ``owner`` defines it (or, given ``inherited``, the raw attribute it
        inherits: the wrapper then shadows it on ``owner`` and restoring deletes it). Returns True
        when wrapped now."""
        original = vars(owner).get(name, _NOT_DEFINED)
        if (id(owner), name) in self._patched:
            return False
        function = original
        if original is _NOT_DEFINED:
            if inherited is None:
                return False
            function = inherited
        target = Target(operation, telemetry)
        setattr(owner, name, InstrumentedFunction(function, wrapper_for(target, function)))
        self._patches.append((owner, name, original))
        self._patched.add((id(owner), name))
        return True

    def restore(self) -> None:
        """Put every original back, last wrapped first."""
        while self._patches:
            owner, name, original = self._patches.pop()
            if original is _NOT_DEFINED:
                delattr(owner, name)
            else:
                setattr(owner, name, original)
        self._patched.clear()

    def __len__(self) -> int:
        return len(self._patches)

    @property
    def patches(self) -> list[tuple[Any, str, Any]]:
        return list(self._patches)
