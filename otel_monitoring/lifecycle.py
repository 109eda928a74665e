"""The ways a process ends, and the telemetry it buffered on the way out.

An interpreter exit runs the atexit flush, but three common endings skip it:

- a signal whose disposition is the default action (SIGTERM from systemd, Docker, Kubernetes or a
  process manager; SIGHUP; SIGINT set back to SIG_DFL). The process is killed by the kernel
  without running any Python code. Here the default action is replaced by a handler that flushes
  (within ``shutdown_timeout``), puts the default back and raises the same signal again, so the
  process ends exactly as it would have (same signal, same exit status). Handlers the application
  or its server install are never replaced: they run, and when they restore the default action
  (uvicorn and gunicorn's uvicorn worker do, then re-raise the signal) the flushing handler comes
  back in its place. ``signal.signal``/``signal.getsignal`` are wrapped so that the flushing handler
  reads as ``SIG_DFL`` to everyone. ``signal_flush=False`` turns this off.

  A Python handler only runs when the main thread next executes bytecode. A signal that lands just
  before the main thread enters a blocking call (``time.sleep``, a join, a read), or on another
  thread, does not interrupt that call: the default action would have ended the process at once,
  the handler waits until the call returns, maybe never. So a watcher thread reads the signal
  wakeup fd (when nothing else owns it) and, if the handler has not started shortly after the
  signal, sends the signal again to the main thread, whose blocking call then fails with EINTR and
  runs the handler.

  The handler runs where the main thread was stopped, which may be inside this package or the
  OpenTelemetry SDK (recording a cost, starting a span) with one of their locks held: the flush's
  last metric collection would wait on that lock until the bound and lose everything. So when the
  interrupted frames are instrumentation code, the handler returns at once and the flush runs
  when that call returns to the application (a trace function on the call's frame), bounded by
  ``thresholds.SIGNAL_DEFER_LIMIT_S`` (a call blocked that long gets the signal again and the
  flush runs then, the collection's own lock waits bounded: see ``meters.locks.collecting``).
- a multiprocessing child (fork, forkserver, spawn; ``ProcessPoolExecutor`` workers), which ends
  with ``os._exit()`` after its target returns. multiprocessing runs its own ``util.Finalize``
  callbacks just before that: one of them flushes.
- a forked child also needs its own identity: ``process.pid`` and ``service.instance.id`` are
  re-read after ``fork()`` (gunicorn ``--preload``, multiprocessing's fork start method).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import uuid
import weakref
from typing import TYPE_CHECKING, Any
from . import names, thresholds

if TYPE_CHECKING:
    from .sdk import Monitoring

_logger = logging.getLogger("otel_monitoring")

# Signals whose default action ends the process and that a supervisor or terminal sends to ask
# for an orderly exit. SIGINT's usual handler (KeyboardInterrupt) already exits through atexit.
FLUSHED_SIGNALS: tuple[str, ...] = ("SIGTERM", "SIGHUP", "SIGINT")

_original_signal = signal.signal
_original_getsignal = signal.getsignal
# Seconds the main thread gets to start a handler on its own before the watcher wakes it.
WAKE_GRACE = 0.5
_flushed: set[int] = set()
_flushing: set[int] = set()
_patched = False
_fork_hook_installed = False
_multiprocessing_hooked = False
_lock = threading.Lock()
# signum -> how many times a handler (ours or the application's) started for it; the watcher compares.
_handler_runs: dict[int, int] = {}
# The application's handlers of flushed signals, wrapped to count their runs: wrapper -> handler.
_app_handlers: dict[Any, Any] = {}
_watcher_fds: tuple[int, int] | None = None
# Wake-ups the watcher sent and has not read back from the wakeup fd yet, per signal.
_pokes: dict[int, int] = {}
# The instance id we generated (not one the user set): regenerated in each forked child.
_generated_instance_id: str | None = None


def new_instance_id() -> str:
    global _generated_instance_id
    _generated_instance_id = str(uuid.uuid4())
    return _generated_instance_id


def current_instance_id() -> str | None:
    """The ``service.instance.id`` this package generated for this process (None if the user set one)."""
    return _generated_instance_id


def _current() -> Monitoring | None:
    from .sdk import get_monitoring

    return get_monitoring()


# --- signals ---


def _counted(signum: int) -> None:
    _handler_runs[signum] = _handler_runs.get(signum, 0) + 1


_INSTRUMENTATION = ("otel_monitoring.", "opentelemetry.", "wrapt.")
# signum -> monotonic time the flush was put off (see _defer)
_deferred_since: dict[int, float] = {}


def _stdlib_paths() -> tuple[str, ...]:
    import sysconfig

    paths = {sysconfig.get_paths().get(key) for key in ("stdlib", "platstdlib")}
    return tuple(os.path.join(path, "") for path in paths if path) + ("<frozen ",)


def _instrumentation_entry(frame: Any) -> Any:
    """The frame by which the application called the interrupted instrumentation (ours or the
    SDK's, maybe through the standard library), or None if the application's own code was
    interrupted: walking out from the innermost frame, the last instrumentation frame before
    the first application frame."""
    stdlib = _stdlib_paths()
    entry = None
    depth = 0
    while frame is not None and depth < 256:
        module = str(frame.f_globals.get("__name__", ""))
        if module == __name__:
            return None
        if module.startswith(_INSTRUMENTATION) or module in ("otel_monitoring", "wrapt"):
            entry = frame
        elif not frame.f_code.co_filename.startswith(stdlib):
            return entry  # the application's code
        frame = frame.f_back
        depth += 1
    return entry


def _defer(signum: int, frame: Any) -> bool:
    """Put the flush off until the interrupted instrumentation call returns to the application
    (its locks released then): a trace function on that call's frame flushes at its return. A
    call that does not return within SIGNAL_DEFER_LIMIT_S (blocked) gets the signal again, and
    the flush runs then."""
    import time

    if signum in _deferred_since:
        return time.monotonic() - _deferred_since[signum] < thresholds.SIGNAL_DEFER_LIMIT_S
    entry = _instrumentation_entry(frame)
    if entry is None:
        return False
    main = threading.main_thread().ident

    def again() -> None:
        if signum in _flushing:
            return
        _pokes[signum] = _pokes.get(signum, 0) + 1  # the watcher skips the byte of this delivery
        try:
            signal.pthread_kill(main, signum)
        except (OSError, ValueError):
            _pokes[signum] -= 1
            _logger.debug("otel-monitoring: delivering the signal again failed", exc_info=True)

    timer = threading.Timer(thresholds.SIGNAL_DEFER_LIMIT_S, again)
    timer.daemon = True
    try:
        timer.start()
    except RuntimeError:  # no thread now: flush here
        return False

    def at_return(traced: Any, event: str, arg: Any) -> Any:
        if event == "return" and traced is entry:
            _flush(signum)
        return at_return

    previous = sys.gettrace()

    def on_call(traced: Any, event: str, arg: Any) -> Any:
        return previous(traced, event, arg) if previous is not None else None

    entry.f_trace_lines = False
    entry.f_trace = at_return
    sys.settrace(on_call)  # turns tracing on in this thread, so the frame's own trace runs
    _deferred_since[signum] = time.monotonic()
    return True


def _flush_then_default(signum: int, frame: Any) -> None:
    """The default action, preceded by a bounded flush."""
    _counted(signum)
    if signum in _flushing:
        return  # a second delivery while the first run flushes: that run ends the process
    try:
        if _defer(signum, frame):
            return
    except Exception:  # deciding must never keep the process from ending
        _logger.debug("otel-monitoring: checking the interrupted frame failed", exc_info=True)
    _flush(signum)


def _flush(signum: int) -> None:
    if signum in _flushing:
        return
    _flushing.add(signum)
    if signum in _deferred_since:
        sys.settrace(None)
    monitoring = _current()
    if monitoring is not None:
        from .meters import locks

        locks.main_thread_waiting(True)
        try:
            monitoring.shutdown(reason=f"signal {signal.Signals(signum).name}")
        except Exception:  # the process must still end as asked
            _logger.debug("otel-monitoring: flush on signal %s failed", signum, exc_info=True)
    _original_signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


def _counting(handler: Any) -> Any:
    """The application's handler, counting its runs for the watcher (``getsignal`` shows it bare)."""
    def counted(signum: int, frame: Any) -> Any:
        _counted(signum)
        return handler(signum, frame)

    _app_handlers[counted] = handler
    return counted


def _shown(handler: Any) -> Any:
    if handler is _flush_then_default:
        return signal.SIG_DFL
    return _app_handlers.get(handler, handler) if callable(handler) else handler


def _signal(signalnum: Any, handler: Any) -> Any:
    """``signal.signal``: setting the default action of a flushed signal installs the flushing
    handler instead; what it returns never shows the flushing handler."""
    if handler == signal.SIG_DFL and int(signalnum) in _flushed:
        previous = _original_signal(signalnum, _flush_then_default)
    elif callable(handler) and int(signalnum) in _flushed:
        previous = _original_signal(signalnum, _counting(handler))
    else:
        previous = _original_signal(signalnum, handler)
    if callable(previous) and previous in _app_handlers:
        return _app_handlers.pop(previous)
    return _shown(previous)


def _getsignal(signalnum: Any) -> Any:
    return _shown(_original_getsignal(signalnum))


_signal.__doc__ = _original_signal.__doc__
_getsignal.__doc__ = _original_getsignal.__doc__


def install_signal_flush() -> None:
    """Flush on the flushed signals wherever their disposition is (or becomes) the default."""
    global _patched
    with _lock:
        for name in FLUSHED_SIGNALS:
            number = getattr(signal, name, None)
            if number is not None:
                _flushed.add(int(number))
        if not _patched:
            signal.signal = _signal  # type: ignore[assignment]
            signal.getsignal = _getsignal  # type: ignore[assignment]
            _patched = True
    if threading.current_thread() is not threading.main_thread():
        # Only the main thread may set handlers; the next SIG_DFL set from it installs ours.
        _logger.warning("otel-monitoring: configure() ran outside the main thread (%s), where Python cannot "
                        "set signal handlers: until the main thread sets a handler, SIGTERM/SIGHUP end the "
                        "process without flushing its telemetry. Call otel_monitoring.configure() (or "
                        "otel_monitoring.lifecycle.install_signal_flush()) from the main thread.",
                        threading.current_thread().name)
        return
    for number in sorted(_flushed):
        try:
            if _original_getsignal(number) == signal.SIG_DFL:
                _original_signal(number, _flush_then_default)
        except (OSError, ValueError):  # not settable here (embedded interpreters)
            _logger.debug("otel-monitoring: cannot handle signal %s", number, exc_info=True)
    _start_watcher()


def _start_watcher(inherited: int | None = None) -> None:
    """Own the signal wakeup fd, unless something (an asyncio loop) already does: its loop wakes
    on the signal by itself. ``inherited``: our write end, inherited by a forked child."""
    global _watcher_fds
    if _watcher_fds is not None and inherited is None:
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    try:
        previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    except (OSError, ValueError):
        previous = None
    if previous != (-1 if inherited is None else inherited):
        if previous is not None:
            signal.set_wakeup_fd(previous)
        os.close(read_fd)
        os.close(write_fd)
        return
    first = _watcher_fds is None
    if not first:
        for fd in _watcher_fds:  # the parent's pipe: its watcher must not read this process' signals
            try:
                os.close(fd)
            except OSError:
                pass
    _watcher_fds = (read_fd, write_fd)
    _handler_runs.clear()
    _flushing.clear()
    _deferred_since.clear()
    _pokes.clear()
    threading.Thread(target=_watch, args=(read_fd, threading.main_thread().ident),
                     name="otel-monitoring-signal-watcher", daemon=True).start()
    if first and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_restart_watcher_in_child)


def _restart_watcher_in_child() -> None:
    if _watcher_fds is None:
        return
    try:
        _start_watcher(inherited=_watcher_fds[1])
    except Exception:  # fork must never fail because of telemetry
        _logger.debug("otel-monitoring: restarting the signal watcher after fork failed", exc_info=True)


def _watch(read_fd: int, main_ident: int) -> None:
    """Wake the main thread for a flushed signal whose handler (ours, or the application's set
    through ``signal.signal``) did not start on its own."""
    import time

    while True:
        try:
            data = os.read(read_fd, 64)
        except InterruptedError:
            continue
        except OSError:
            return
        if not data:
            return
        for signum in data:
            if signum not in _flushed:
                continue
            if _pokes.get(signum, 0) > 0:  # the byte of our own wake-up
                _pokes[signum] -= 1
                continue
            seen = _handler_runs.get(signum, 0)
            deadline = time.monotonic() + WAKE_GRACE
            while time.monotonic() < deadline and _handler_runs.get(signum, 0) == seen:
                time.sleep(0.02)
            handler = _original_getsignal(signum)
            if _handler_runs.get(signum, 0) != seen or not (
                    handler is _flush_then_default or (callable(handler) and handler in _app_handlers)):
                continue
            # Still pending: the main thread's call fails with EINTR and runs it (the two
            # deliveries make one run, as two signals before a handler runs always do).
            _pokes[signum] = _pokes.get(signum, 0) + 1
            try:
                signal.pthread_kill(main_ident, signum)
            except (OSError, ValueError):
                _pokes[signum] -= 1
                _logger.debug("otel-monitoring: waking the main thread failed", exc_info=True)


# --- forked children: identity ---


def _refresh_identity(monitoring: Monitoring) -> None:
    """Give the pipeline's one Resource object this process' pid (and a new instance id).

    Tracers, meters and loggers hold the provider's Resource object itself, so replacing its
    attributes in place reaches every one of them in this (child) process."""
    resource = monitoring.resource
    if resource is None:
        return
    attributes = dict(resource.attributes)
    if names.PROCESS_PID not in attributes and names.SERVICE_INSTANCE_ID not in attributes:
        return
    attributes[names.PROCESS_PID] = os.getpid()
    attributes[names.PROCESS_PARENT_PID] = os.getppid()
    if _generated_instance_id is not None and attributes.get(names.SERVICE_INSTANCE_ID) == _generated_instance_id:
        attributes[names.SERVICE_INSTANCE_ID] = new_instance_id()
    from opentelemetry.attributes import BoundedAttributes

    resource._attributes = BoundedAttributes(attributes=attributes, immutable=True)


def _after_fork_in_child() -> None:
    monitoring = _current()
    if monitoring is None:
        return
    try:
        _refresh_identity(monitoring)
        monitoring._after_fork_in_child()
    except Exception:  # fork must never fail because of telemetry
        _logger.debug("otel-monitoring: refreshing the pipeline after fork failed", exc_info=True)


# --- multiprocessing children: flush before os._exit ---


def _finalize_in_child(monitoring: Monitoring) -> None:
    """Runs in each multiprocessing child as it starts (multiprocessing's after-fork callbacks run
    for every start method): flush in multiprocessing's exit function, before ``os._exit``."""
    from multiprocessing import util

    ref = weakref.ref(monitoring)

    def flush() -> None:
        target = ref()
        if target is not None:
            target.shutdown(reason="multiprocessing child exit")

    util.Finalize(None, flush, exitpriority=100)


def _hook_multiprocessing(monitoring: Monitoring) -> None:
    from multiprocessing import util

    util.register_after_fork(monitoring, _finalize_in_child)
    process = sys.modules["multiprocessing"].current_process()
    if type(process).__name__ != "_MainProcess" and monitoring is _current():
        # configure() ran inside a child already started (spawn/forkserver import the main module
        # before bootstrapping, which runs the callbacks registered above; a child configuring
        # later, in its target, registers its flush here).
        _finalize_in_child(monitoring)


def install_process_hooks(monitoring: Monitoring) -> None:
    """Re-read identity after fork; flush multiprocessing children before they exit."""
    global _fork_hook_installed, _multiprocessing_hooked
    with _lock:
        if not _fork_hook_installed and hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _fork_hook_installed = True
    if "multiprocessing" in sys.modules:
        _hook_multiprocessing(monitoring)
        return
    # multiprocessing is not imported yet: hook it when the program imports it (importing it here
    # would cost every program that never starts a child).
    import wrapt

    ref = weakref.ref(monitoring)

    def on_import(_module: Any) -> None:
        target = ref()
        if target is not None and target is _current():
            try:
                _hook_multiprocessing(target)
            except Exception:
                _logger.debug("otel-monitoring: hooking multiprocessing failed", exc_info=True)

    wrapt.register_post_import_hook(on_import, "multiprocessing")
