"""Builds the OpenTelemetry SDK pipeline once per process and owns its lifecycle.

``configure()`` resolves the settings, asks the components (instrumentation, meters, local
monitoring) for their processors and readers, builds the tracer, meter and logger providers
with the chosen exporters, makes them global, bridges stdlib logging, then starts the
components. It is idempotent: a second call, or a call inside a process that
``opentelemetry-instrument`` already set up, returns the one ``Monitoring`` handle.

Exit is bounded: the providers are built with ``shutdown_on_exit=False`` and one atexit hook
flushes them from a daemon thread for at most ``shutdown_timeout`` seconds, so an unreachable
collector can delay exit but never hang it. What could not be delivered by then is counted in one
message. ``lifecycle`` makes the same flush run on termination signals and in multiprocessing
children, which skip atexit.
"""

from __future__ import annotations

import atexit
import gc
import logging
import os
import sys
import threading
import time
from typing import Any, Callable

from opentelemetry import metrics, trace
from opentelemetry._logs import get_logger_provider, set_logger_provider
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from . import logging_bridge, policy
from .components import Component, load_components
from .config import Settings, batch_processor_arguments, load_settings
from .exporters import build_exporters
from .resource import build_resource
from .sampling import build_sampler
from .span_pipeline import LeanMultiSpanProcessor
from .version import __version__

__all__ = ["Monitoring", "configure", "get_monitoring"]

_logger = logging.getLogger("otel_monitoring")

INSTRUMENTATION_SCOPE = "otel_monitoring"
# After atexit, CPython's finalization runs full garbage collections over every object left and
# frees them all: measured 1.2-1.4 s of teardown where one collection took 0.25-0.3 s (71k
# objects, a loaded machine, the flush's thread still running).
TEARDOWN_COLLECTIONS = 5.0


def _teardown_reserve(timeout: float) -> float:
    """Seconds to keep for the interpreter's teardown: a few times what one full collection costs
    now (timed on a collection done here, which the teardown would have done anyway), at most
    two fifths of the bound."""
    began = time.monotonic()
    gc.collect()
    spent = time.monotonic() - began
    if os.environ.get("OTEL_MONITORING_DEBUG_EXIT"):
        sys.stderr.write(f"otel-monitoring: one collection {spent:.3f}s, teardown reserve {TEARDOWN_COLLECTIONS * spent:.3f}s\n")
    return min(timeout * 0.4, TEARDOWN_COLLECTIONS * spent)

class Monitoring:
    """The handle ``configure()`` returns: providers, tracer/meter access, flush and shutdown."""

    def __init__(
        self,
        settings: Settings,
        tracer_provider: Any,
        meter_provider: Any,
        logger_provider: Any,
        components: list[Component] | None = None,
        owns_providers: bool = True,
    ):
        self.settings = settings
        self.tracer_provider = tracer_provider
        self.meter_provider = meter_provider
        self.logger_provider = logger_provider
        self.components: list[Component] = list(components or [])
        self.owns_providers = owns_providers
        self._logging_handler: logging.Handler | None = None
        self._shutdown_hooks: list[Callable[[], None]] = []
        self._loss_counters: list[Callable[[], dict[str, int]]] = []
        self._shutdown_done = False
        self._lock = threading.Lock()
        self._standby: threading.Thread | None = None
        self._standby_go = threading.Event()

    @property
    def resource(self) -> Any:
        return getattr(self.tracer_provider, "resource", None)

    def tracer(self, name: str = INSTRUMENTATION_SCOPE, version: str | None = __version__) -> trace.Tracer:
        return self.tracer_provider.get_tracer(name, version)

    def meter(self, name: str = INSTRUMENTATION_SCOPE, version: str | None = __version__) -> metrics.Meter:
        return self.meter_provider.get_meter(name, version)

    def component(self, name: str) -> Component | None:
        return next((c for c in self.components if c.name == name), None)

    def add_shutdown_hook(self, hook: Callable[[], None]) -> None:
        """Run ``hook`` at shutdown, before the providers flush (last added runs first)."""
        self._shutdown_hooks.append(hook)

    def force_flush(self, timeout: float = 5.0) -> bool:
        """Export everything buffered now. Returns False if a provider did not finish in time."""
        millis = int(timeout * 1000)
        ok = True
        for provider in (self.tracer_provider, self.meter_provider, self.logger_provider):
            flush = getattr(provider, "force_flush", None)
            if flush is None:
                continue
            try:
                result = flush(millis)
                ok = ok and result is not False
            except Exception:  # flushing must never raise into the app
                _logger.debug("force_flush failed", exc_info=True)
                ok = False
        return ok

    def add_loss_counter(self, counter: Callable[[], dict[str, int]]) -> None:
        """``counter()`` says what a component could not deliver (e.g. ``{"notifications": 2}``);
        the exit message adds it up with the exporters' losses."""
        self._loss_counters.append(counter)

    def shutdown(self, timeout: float | None = None, reason: str = "exit", at_exit: bool = False) -> bool:
        """Stop components, flush and shut the providers down, within ``timeout`` seconds.

        Runs in a daemon thread joined for at most ``timeout``: if a destination hangs, the
        caller (often the interpreter at exit) goes on. What was not delivered (dropped by a
        failing destination, or still queued when time ran out) is counted in one message.
        ``at_exit``: the interpreter's own teardown follows and is part of the bound, so a flush
        still running after half the bound leaves room for it (``_teardown_reserve``).
        Returns True if everything finished.
        """
        started = time.monotonic()
        with self._lock:
            if self._shutdown_done:
                return True
            self._shutdown_done = True
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        if self._logging_handler is not None:
            logging.getLogger().removeHandler(self._logging_handler)
            # logging.shutdown still flushes every handler alive; this one's pipeline is being shut
            # down (and its flush starts a thread, which Python 3.12+ refuses at exit).
            self._logging_handler.flush = lambda: None  # type: ignore[method-assign]
        diversion = _ExitDiversion.install()
        worker = self._standby
        if worker is not None and worker.is_alive():
            self._standby_go.set()  # Python 3.12+ refuses new threads at exit: the thread started early
        else:
            worker = threading.Thread(target=self._shutdown_all, name="otel-monitoring-shutdown", daemon=True)
            try:
                worker.start()
            except RuntimeError:
                # No thread to bound it (a Python that refuses threads here, no standby thread):
                # flush in this thread, bounded by each exporter's own timeout.
                self._shutdown_all()
                diversion.remove()
                _report_exit_losses(self, reason, timeout, True, diversion.last)
                return True
        # The first half of the bound is the flush's alone (a slow machine needs it); only a flush
        # still running then is cut short for the interpreter's teardown.
        worker.join(timeout / 2 if at_exit else timeout)
        if worker.is_alive() and at_exit:
            reserve = _teardown_reserve(timeout)
            worker.join(max(0.0, timeout - (time.monotonic() - started) - reserve))
        elif worker.is_alive():
            worker.join(max(0.0, timeout - (time.monotonic() - started)))
        finished = not worker.is_alive()
        if finished:  # else the flush's threads may still log: they must not reach the app's handlers
            diversion.remove()
        _report_exit_losses(self, reason, timeout, finished, diversion.last)
        return finished

    def _exit(self) -> None:
        """The atexit hook."""
        self.shutdown(at_exit=True)

    def _after_fork_in_child(self) -> None:
        # A thread of the parent may have held the lock at fork(); the child has no such thread.
        self._lock = threading.Lock()
        if self._standby is not None:  # the parent's standby thread did not come along
            self.start_standby()

    def start_standby(self) -> None:
        """From Python 3.12 an atexit callback cannot start a thread, so the thread that bounds the
        exit flush is started now and waits (one idle thread per process)."""
        if sys.version_info < (3, 12):
            return
        self._standby_go = threading.Event()
        go = self._standby_go

        def run() -> None:
            go.wait()
            self._shutdown_all()

        self._standby = threading.Thread(target=run, name="otel-monitoring-shutdown", daemon=True)
        try:
            self._standby.start()
        except RuntimeError:  # configure() itself running at interpreter shutdown
            self._standby = None

    def _shutdown_all(self) -> None:
        for hook in reversed(self._shutdown_hooks):
            _call_quietly(hook, "shutdown hook")
        # The instrumentation is undone after the last metric collection (the last snapshot and
        # export): its observable readings (vectors per collection) stop when it is undone.
        last = [c for c in self.components if c.name == "instrumentation"]
        for component in reversed(self.components):
            if component not in last:
                _call_quietly(component.shutdown, f"component {component.name} shutdown")
        if not self.owns_providers:
            self.force_flush()
            for component in last:
                _call_quietly(component.shutdown, f"component {component.name} shutdown")
            return
        # Metrics first: their final collection may record into the still-open trace/log pipelines.
        for provider in (self.meter_provider, self.tracer_provider, self.logger_provider):
            shutdown = getattr(provider, "shutdown", None)
            if shutdown is not None:
                _call_quietly(shutdown, f"{type(provider).__name__}.shutdown")
            if provider is self.meter_provider:
                for component in last:
                    _call_quietly(component.shutdown, f"component {component.name} shutdown")


def _queued(processor: Any) -> int:
    """Items still waiting in an SDK batch processor's queue (0 for any other processor)."""
    inner = getattr(processor, "_batch_processor", None)
    queue = getattr(inner, "_queue", None)
    try:
        return len(queue) if queue is not None else 0
    except TypeError:
        return 0


class _ExitDiversion(logging.Filter):
    """While the pipeline shuts down, the exporters' and this package's records logged by other
    threads than the one shutting down (the flush's threads) skip the application's handlers: a
    slow or stuck handler would hold its lock past the bound, and the exit message (then
    ``logging.shutdown``) would wait for it. The last such message joins the exit message."""

    def __init__(self) -> None:
        super().__init__()
        self.owner = threading.get_ident()
        self.last: str | None = None
        self.handlers: list[logging.Handler] = []

    @classmethod
    def install(cls) -> _ExitDiversion:
        diversion = cls()
        loggers = [logging.getLogger()] + [item for item in list(logging.Logger.manager.loggerDict.values())
                                           if isinstance(item, logging.Logger)]
        for logger in loggers:
            for handler in list(logger.handlers):
                if handler not in diversion.handlers:
                    handler.addFilter(diversion)
                    diversion.handlers.append(handler)
        return diversion

    def remove(self) -> None:
        for handler in self.handlers:
            handler.removeFilter(self)
        self.handlers = []

    def filter(self, record: logging.LogRecord) -> bool:
        if threading.get_ident() == self.owner or not record.name.startswith(("opentelemetry", "otel_monitoring")):
            return True
        if record.levelno >= logging.WARNING:
            try:
                self.last = record.getMessage()
            except Exception:  # noqa: BLE001 - a bad format must not break the exit
                self.last = str(record.msg)
        return False


def _report_exit_losses(monitoring: Monitoring, reason: str, timeout: float, finished: bool,
                        problem: str | None = None) -> None:
    """One message at the end of a shutdown, counting everything not delivered in this process."""
    from .exporters.delivery import dropped_totals

    lost: dict[str, int] = dict(dropped_totals())
    if not finished:
        span_processors = getattr(getattr(monitoring.tracer_provider, "_active_span_processor", None),
                                  "_span_processors", ())
        log_processors = getattr(getattr(monitoring.logger_provider, "_multi_log_record_processor", None),
                                 "_log_record_processors", ())
        lost["spans"] = lost.get("spans", 0) + sum(_queued(p) for p in span_processors)
        lost["log records"] = lost.get("log records", 0) + sum(_queued(p) for p in log_processors)
    for counter in monitoring._loss_counters:
        try:
            for kind, count in counter().items():
                lost[kind] = lost.get(kind, 0) + count
        except Exception:  # counting must not fail the exit
            _logger.debug("otel-monitoring: a loss counter failed", exc_info=True)
    summary = ", ".join(f"{count} {kind}" for kind, count in lost.items() if count)
    if not summary and finished:
        return
    why = ("" if finished else f"; the flush did not finish within {timeout:.1f}s (a destination is slow or "
           "unreachable; raise OTEL_MONITORING_SHUTDOWN_TIMEOUT to wait longer)")
    if problem:
        why += f". Last problem reported while flushing: {problem}"
    _logger.warning("otel-monitoring: at %s, telemetry not delivered by this process: %s%s",
                    reason, summary or "nothing counted", why)


def _call_quietly(fn: Callable[[], Any], what: str) -> None:
    try:
        fn()
    except Exception:  # shutdown must finish whatever one part does
        _logger.warning("otel-monitoring: %s failed", what, exc_info=True)


_configure_lock = threading.RLock()
_monitoring: Monitoring | None = None


def get_monitoring() -> Monitoring | None:
    """The handle of the process' pipeline, or None before ``configure()``."""
    return _monitoring


def configure(**options: Any) -> Monitoring:
    """Set up traces, metrics and logs for this process, once. See docs/configuration.md.

    Explicit arguments win over ``OTEL_*`` / ``OTEL_MONITORING_*`` variables. Raises
    ``ConfigError`` (naming the argument or variable and a valid example) for bad values.
    """
    global _monitoring
    with _configure_lock:
        if _monitoring is not None:
            if options:
                _logger.debug("otel-monitoring is already configured; ignoring arguments %s", sorted(options))
            return _monitoring
        settings = load_settings(options)
        _monitoring = _build(settings)
        return _monitoring


def _sdk_provider_already_set() -> bool:
    from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider

    return isinstance(trace.get_tracer_provider(), SdkTracerProvider)


def _build(settings: Settings) -> Monitoring:
    from .instrumentation.core import refresh_globals

    refresh_globals()  # decorators applied before configure() look at the environment again
    if settings.disabled:
        return Monitoring(settings, trace.get_tracer_provider(), metrics.get_meter_provider(),
                          get_logger_provider(), owns_providers=False)

    if _sdk_provider_already_set():
        # Another configurator (e.g. the SDK's own under opentelemetry-instrument) built the
        # pipeline: adopt it rather than build a second one, which would duplicate every span.
        _logger.info("otel-monitoring: adopting the OpenTelemetry SDK pipeline already set up in this process")
        monitoring = Monitoring(settings, trace.get_tracer_provider(), metrics.get_meter_provider(),
                                get_logger_provider(), owns_providers=False)
        components = load_components(settings)
        for component in components:  # span processors can still be added; metric readers cannot
            for processor in component.span_processors():
                monitoring.tracer_provider.add_span_processor(processor)
        _start_components(monitoring, components)
        atexit.register(monitoring._exit)
        monitoring.start_standby()
        _install_lifecycle(monitoring)
        return monitoring

    # Before any contrib HTTP instrumentor is enabled (they read it once): the stable conventions.
    from .instrumentation.api import prefer_stable_http_conventions

    prefer_stable_http_conventions()
    resource = build_resource(settings)
    components = load_components(settings)
    exporters = build_exporters(settings)

    report = policy.reporter(settings.strict, "The SDK's default applies.")
    span_batching = batch_processor_arguments("OTEL_BSP", report=report)
    log_batching = batch_processor_arguments("OTEL_BLRP", report=report)
    tracer_provider = TracerProvider(resource=resource, sampler=build_sampler(settings), shutdown_on_exit=False,
                                     active_span_processor=LeanMultiSpanProcessor())
    for component in components:
        for processor in component.span_processors():
            tracer_provider.add_span_processor(processor)
    for exporter in exporters.spans:
        tracer_provider.add_span_processor(BatchSpanProcessor(exporter, **span_batching))

    readers = [
        PeriodicExportingMetricReader(
            exporter,
            export_interval_millis=settings.metric_export_interval * 1000,
            export_timeout_millis=settings.metric_export_timeout * 1000,
        )
        for exporter in exporters.metrics
    ]
    views = []
    for component in components:
        readers.extend(component.metric_readers())
        views.extend(component.views())
    meter_provider = MeterProvider(resource=resource, metric_readers=readers, views=views, shutdown_on_exit=False)

    logger_provider = LoggerProvider(resource=resource, shutdown_on_exit=False)
    for exporter in exporters.logs:
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(exporter, **log_batching))

    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    set_logger_provider(logger_provider)

    monitoring = Monitoring(settings, tracer_provider, meter_provider, logger_provider, owns_providers=True)
    if settings.logging_bridge and exporters.logs:
        monitoring._logging_handler = logging_bridge.install(logger_provider, settings.log_level)
    atexit.register(monitoring._exit)
    monitoring.start_standby()
    _start_components(monitoring, components)
    _install_lifecycle(monitoring)
    return monitoring


def _install_lifecycle(monitoring: Monitoring) -> None:
    from . import lifecycle

    try:
        if monitoring.settings.signal_flush:
            lifecycle.install_signal_flush()
        lifecycle.install_process_hooks(monitoring)
    except Exception:  # the host application comes first
        _logger.warning("otel-monitoring: exit hooks could not be installed; telemetry may be lost on "
                        "signals and in child processes", exc_info=True)


def _start_components(monitoring: Monitoring, components: list[Component]) -> None:
    from .config import ConfigError

    for component in components:
        try:
            component.start(monitoring)
        except ConfigError:
            raise
        except Exception:  # a broken feature must not stop the host application
            _logger.warning("otel-monitoring: component %s failed to start; continuing without it",
                            component.name, exc_info=True)
            continue
        monitoring.components.append(component)

