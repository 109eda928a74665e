"""System and process metrics: the contrib instrumentor for what it covers, plus what it lacks.

The contrib ``SystemMetricsInstrumentor`` reports CPU, memory, swap, disk and network I/O and
the process metrics. It has no filesystem, load average, uptime or process count (its source
leaves ``system.filesystem.*`` as a TODO), so those are observed here under the current
semantic-convention names (load average as the collector's hostmetrics receiver names it).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import time
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import psutil
from opentelemetry.metrics import CallbackOptions, Observation, get_meter

from ..version import __version__
from .locks import ForkSafeLock
from .. import names

_logger = logging.getLogger(__name__)

SCOPE = "otel_monitoring.meters.system"

# The contrib metrics on by default: what a host's health needs (CPU, memory, swap, disk and network
# I/O, process CPU, memory, threads and file descriptors). The rest of the contrib's set (disk
# operations and time, network packets, errors and drops, context switches, process disk I/O,
# cpython.gc.*, and system.network.connections, ~9 ms per collection) is opt-in by name or glob
# in OTEL_MONITORING_SYSTEM_METRICS_EXTRA; the deprecated process.runtime.* and system.thread_count
# are never reported. Keeping the default lean keeps one collection near 2 ms of CPU.
DEFAULT_CONTRIB_METRICS = (
    names.SYSTEM_CPU_TIME, names.SYSTEM_CPU_UTILIZATION, names.SYSTEM_MEMORY_USAGE, names.SYSTEM_MEMORY_UTILIZATION,
    names.SYSTEM_SWAP_USAGE, names.SYSTEM_SWAP_UTILIZATION, names.SYSTEM_DISK_IO, names.SYSTEM_NETWORK_IO,
    names.PROCESS_CPU_TIME, names.PROCESS_CPU_UTILIZATION, names.PROCESS_MEMORY_USAGE, names.PROCESS_MEMORY_VIRTUAL,
    names.PROCESS_THREAD_COUNT, names.PROCESS_OPEN_FILE_DESCRIPTOR_COUNT,
)
_NEVER = ("process.runtime.*", names.SYSTEM_THREAD_COUNT)
_EXCLUDED_METRICS_ENV = "OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS"


def contrib_config(extra: Iterable[str] = (), environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The contrib instrumentor's config: the default metrics plus ``extra`` (names or globs), less
    the user's ``OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS`` patterns (as the contrib reads them)."""
    from opentelemetry.instrumentation.system_metrics import _DEFAULT_CONFIG

    environ = os.environ if environ is None else environ
    excluded = [p.strip() for p in environ.get(_EXCLUDED_METRICS_ENV, "").split(",") if p.strip()]
    wanted = (*DEFAULT_CONTRIB_METRICS, *extra)
    return {
        name: states for name, states in _DEFAULT_CONFIG.items()
        if any(fnmatch.fnmatch(name, pattern) for pattern in wanted)
        and not any(fnmatch.fnmatch(name, pattern) for pattern in (*excluded, *_NEVER))
    }


# Block devices that are not disks: loop mounts (snaps, images), RAM disks, compressed swap in RAM.
VIRTUAL_BLOCK_DEVICES = ("loop", "ram", "zram")
_SHARED_READS = ("cpu_times", "cpu_times_percent", "virtual_memory", "swap_memory", "disk_io_counters",
                 "net_io_counters")


class SharedReads:
    """``target`` with the calls named in ``shared`` answered from one read per ``ttl`` seconds.

    The contrib instrumentor calls e.g. ``psutil.disk_io_counters`` for each of its disk metrics
    and ``Process.memory_info`` for both process memory metrics; through this view a collection
    reads each source once. Everything else goes to ``target`` as is.
    """

    def __init__(self, target: Any, shared: Iterable[str], ttl: float = 0.25):
        self._target = target
        self._shared = frozenset(shared)
        self._ttl = ttl
        self._cache: dict[tuple[str, tuple, tuple], tuple[float, Any]] = {}
        self._lock = ForkSafeLock()

    def clear(self) -> None:
        """Forget the cached reads (benchmarks: measure fresh reads back to back)."""
        with self._lock:
            self._cache.clear()

    def _adjust(self, name: str, result: Any) -> Any:
        return result

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._target, name)
        if name not in self._shared:
            return value

        def shared(*args: Any, **kwargs: Any) -> Any:
            key = (name, args, tuple(sorted(kwargs.items())))
            now = time.monotonic()
            with self._lock:
                hit = self._cache.get(key)
                if hit is not None and now - hit[0] < self._ttl:
                    return hit[1]
            result = self._adjust(name, value(*args, **kwargs))
            with self._lock:
                self._cache[key] = (now, result)
            return result

        return shared


class PsutilView(SharedReads):
    """The ``psutil`` module the contrib instrumentor sees: shared reads, and per-disk readings
    without virtual block devices (loop, ram, zram), which are most of the points on a typical
    host and no disk I/O."""

    def __init__(self, ttl: float = 0.25):
        super().__init__(psutil, _SHARED_READS, ttl)

    def _adjust(self, name: str, result: Any) -> Any:
        if name == "disk_io_counters" and isinstance(result, dict):
            return {device: counters for device, counters in result.items()
                    if not device.startswith(VIRTUAL_BLOCK_DEVICES)}
        return result


# Process reads the contrib makes more than once per collection (cpu_percent keeps state: not shared).
_SHARED_PROCESS_READS = ("memory_info", "cpu_times", "num_threads", "num_fds", "num_ctx_switches", "io_counters")


# One view for the contrib instrumentor and our own callbacks, so a collection reads each source once.
shared_psutil = PsutilView()


@dataclass(frozen=True)
class Filesystem:
    device: str
    mountpoint: str
    fstype: str
    mode: str  # rw | ro

    @property
    def attributes(self) -> dict[str, str]:
        attributes = {names.SYSTEM_FILESYSTEM_MOUNTPOINT: self.mountpoint, names.SYSTEM_FILESYSTEM_MODE: self.mode}
        if self.device:
            attributes[names.SYSTEM_DEVICE] = self.device
        if self.fstype:
            attributes[names.SYSTEM_FILESYSTEM_TYPE] = self.fstype
        return attributes


@dataclass(frozen=True)
class FilesystemUsage:
    used: int
    free: int  # available to unprivileged users, as df shows it
    reserved: int  # kept for root

    @property
    def utilization(self) -> float:
        """used / (used + free): df's Use%, and the hostmetrics receiver's definition."""
        visible = self.used + self.free
        return self.used / visible if visible else 0.0


def filesystem_usage(mountpoint: str) -> FilesystemUsage:
    usage = psutil.disk_usage(mountpoint)
    return FilesystemUsage(usage.used, usage.free, max(0, usage.total - usage.used - usage.free))


class FilesystemList:
    """The monitored filesystems, re-read from the mount table at most every ``refresh`` seconds."""

    def __init__(self, mountpoints: Iterable[str] = (), refresh: float = 60.0):
        self._wanted = tuple(mountpoints)
        self._refresh = refresh
        self._cached: tuple[Filesystem, ...] = ()
        self._read_at = float("-inf")
        self._lock = ForkSafeLock()

    def get(self) -> tuple[Filesystem, ...]:
        now = time.monotonic()
        with self._lock:
            if now - self._read_at >= self._refresh:
                self._cached = self._read()
                self._read_at = now
            return self._cached

    def _read(self) -> tuple[Filesystem, ...]:
        partitions = {p.mountpoint: p for p in psutil.disk_partitions(all=bool(self._wanted))}
        wanted = self._wanted or (*partitions, os.path.abspath(os.sep))
        found: dict[str, Filesystem] = {}
        for mountpoint in wanted:
            if mountpoint in found or not os.path.isdir(mountpoint):
                continue
            part = partitions.get(mountpoint)
            opts = part.opts.split(",") if part else []
            found[mountpoint] = Filesystem(
                part.device if part else "", mountpoint, part.fstype if part else "", "ro" if "ro" in opts else "rw"
            )
        return tuple(found.values())


class SystemMeters:
    """Starts the contrib instrumentor and observes what it lacks, on one meter provider."""

    def __init__(self, meter_provider: Any = None, mountpoints: Iterable[str] = (), extra: Iterable[str] = (),
                 filesystems: FilesystemList | None = None):
        self._meter_provider = meter_provider
        self._extra = tuple(extra)
        self.filesystems = filesystems or FilesystemList(mountpoints)
        self._instrumentor: Any = None
        self._pid = -1
        self._process_started = 0.0
        self._boot_time: float | None = None

    def start(self) -> None:
        from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

        import opentelemetry.instrumentation.system_metrics as contrib

        # A BaseInstrumentor is a per-class singleton: re-target it if a previous pipeline used it.
        instrumentor = SystemMetricsInstrumentor(config=contrib_config(self._extra))
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        contrib.psutil = shared_psutil  # the contrib module's own name only: the application's psutil is untouched
        process = getattr(instrumentor, "_proc", None)  # the contrib's psutil.Process of this process
        if isinstance(process, psutil.Process):
            instrumentor._proc = SharedReads(process, _SHARED_PROCESS_READS)
        instrumentor.instrument(meter_provider=self._meter_provider)
        self._instrumentor = instrumentor
        self._observe_additions()

    def shutdown(self) -> None:
        if self._instrumentor is not None and self._instrumentor.is_instrumented_by_opentelemetry:
            self._instrumentor.uninstrument()

    def _observe_additions(self) -> None:
        meter = get_meter(SCOPE, __version__, self._meter_provider)
        meter.create_observable_up_down_counter(
            names.SYSTEM_FILESYSTEM_USAGE, [self._filesystem_usage], unit="By",
            description="Filesystem space by state (used, free, reserved); the states add up to the size.")
        meter.create_observable_gauge(
            names.SYSTEM_FILESYSTEM_UTILIZATION, [self._filesystem_utilization], unit="1",
            description="Fraction of filesystem bytes used: used / (used + free), as df shows it.")
        for minutes, index in (("1m", 0), ("5m", 1), ("15m", 2)):
            meter.create_observable_gauge(
                f"system.cpu.load_average.{minutes}", [self._load_average(index)], unit="{thread}",
                description=f"Average CPU load over the last {minutes[:-1]} minute(s).")
        meter.create_observable_gauge(
            names.SYSTEM_UPTIME, [self._system_uptime], unit="s", description="The time the system has been running.")
        meter.create_observable_up_down_counter(
            names.SYSTEM_PROCESS_COUNT, [self._process_count], unit="{process}",
            description="Number of processes on the host.")
        meter.create_observable_gauge(
            names.PROCESS_UPTIME, [self._process_uptime], unit="s", description="The time the process has been running.")

    # --- callbacks: each catches its own errors so one unreadable source never hides the others ---

    def _filesystem_usage(self, options: CallbackOptions) -> Iterable[Observation]:
        for fs in self.filesystems.get():
            try:
                usage = filesystem_usage(fs.mountpoint)
            except OSError:
                continue
            for state in ("used", "free", "reserved"):
                yield Observation(getattr(usage, state), {**fs.attributes, names.SYSTEM_FILESYSTEM_STATE: state})

    def _filesystem_utilization(self, options: CallbackOptions) -> Iterable[Observation]:
        for fs in self.filesystems.get():
            try:
                yield Observation(filesystem_usage(fs.mountpoint).utilization, fs.attributes)
            except OSError:
                continue

    @staticmethod
    def _load_average(index: int):
        def observe(options: CallbackOptions) -> Iterable[Observation]:
            yield Observation(psutil.getloadavg()[index])

        return observe

    def _system_uptime(self, options: CallbackOptions) -> Iterable[Observation]:
        if self._boot_time is None:  # fixed for the life of the host; psutil re-reads /proc/stat each call
            self._boot_time = psutil.boot_time()
        yield Observation(time.time() - self._boot_time)

    @staticmethod
    def _process_count(options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(len(psutil.pids()))

    def _process_uptime(self, options: CallbackOptions) -> Iterable[Observation]:
        pid = os.getpid()
        if pid != self._pid:  # first call, or a forked child
            self._pid, self._process_started = pid, psutil.Process(pid).create_time()
        yield Observation(max(0.0, time.time() - self._process_started))
