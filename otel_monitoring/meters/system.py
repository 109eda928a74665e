"""System and process metrics: the contrib instrumentor's default set, plus what it lacks.

The default set of the contrib ``SystemMetricsInstrumentor`` (CPU, memory, swap, disk and network
I/O, the process metrics) is produced here under the contrib's instrumentation scope with its exact
names, units, descriptions, instrument kinds and attributes, from shared psutil reads
(``host_reads``), as points built at collection time (``otel_monitoring.observed``) rather than one
SDK Measurement per value. The contrib instrumentor itself runs only for the opt-in extras
(``OTEL_MONITORING_SYSTEM_METRICS_EXTRA``), reading through the same shared view. Filesystem, load
average, uptimes and process count, which the contrib lacks (its source leaves
``system.filesystem.*`` as a TODO), come under our own scope with the current semantic-convention
names (load average as the collector's hostmetrics receiver names it).
"""

from __future__ import annotations

import fnmatch
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping

import psutil

from ..observed import COUNTER, GAUGE, UP_DOWN_COUNTER, Instrument, ObservedInstruments
from ..version import __version__
from .host_reads import (VIRTUAL_BLOCK_DEVICES, CpuTimesPercent, ProcessCpuPercent, PsutilView, SharedReads,
                         collection, process_reads, shared_psutil)
from .locks import ForkSafeLock
from .. import names

__all__ = ["DEFAULT_CONTRIB_METRICS", "VIRTUAL_BLOCK_DEVICES", "Filesystem", "FilesystemList", "FilesystemUsage",
           "PsutilView", "SharedReads", "SystemMeters", "contrib_config", "filesystem_usage", "shared_psutil"]

_logger = logging.getLogger(__name__)

SCOPE = "otel_monitoring.meters.system"
# The schema URL the contrib instrumentor's meter declares; its scope name and version are its module's.
CONTRIB_SCHEMA_URL = "https://opentelemetry.io/schemas/1.11.0"

# The contrib metrics on by default: what a host's health needs (CPU, memory, swap, disk and network
# I/O, process CPU, memory, threads and file descriptors). The rest of the contrib's set (disk
# operations and time, network packets, errors and drops, context switches, process disk I/O,
# cpython.gc.*, and system.network.connections, ~9 ms per collection) is opt-in by name or glob
# in OTEL_MONITORING_SYSTEM_METRICS_EXTRA; the deprecated process.runtime.* and system.thread_count
# are never reported.
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


# --- the contrib's default set, value for value as its callbacks compute them ---

_Builder = Callable[[list[str], "SystemMeters"], Instrument]


def _per_cpu(name: str, kind: str, unit: str, description: str, read: Callable[[], Any], scale: float) -> _Builder:
    def build(states: list[str], meters: SystemMeters) -> Instrument:
        def observe() -> Iterator[tuple[float, dict]]:
            for cpu, times in enumerate(read() if read is not None else meters.cpu_percent.read()):
                for state in states:
                    if hasattr(times, state):
                        value = getattr(times, state)
                        yield (value / scale if scale != 1 else value), {"state": state, "cpu": cpu + 1}

        return Instrument(name, kind, unit, description, observe)

    return build


def _by_state(name: str, unit: str, description: str, read: Callable[[], Any], ratio: bool) -> _Builder:
    def build(states: list[str], meters: SystemMeters) -> Instrument:
        def observe() -> Iterator[tuple[float, dict]]:
            reading = read()
            for state in states:
                if hasattr(reading, state):
                    value = getattr(reading, state)
                    if ratio:  # the contrib's swap ratio is 0 without swap; memory always has a total
                        value = value / reading.total if reading.total or name == names.SYSTEM_MEMORY_UTILIZATION else 0
                    yield value, {"state": state}

        return Instrument(name, GAUGE, unit, description, observe)

    return build


def _per_device(name: str, unit: str, description: str, read: Callable[[], Any], fields: Mapping[str, str]) -> _Builder:
    def build(states: list[str], meters: SystemMeters) -> Instrument:
        def observe() -> Iterator[tuple[float, dict]]:
            for device, counters in read().items():
                for direction in states:
                    field = fields[direction]
                    if hasattr(counters, field):
                        yield getattr(counters, field), {"device": device, "direction": direction}

        return Instrument(name, COUNTER, unit, description, observe)

    return build


def _process_value(name: str, kind: str, unit: str, description: str, read: Callable[[], Any]) -> _Builder:
    def build(states: list[str], meters: SystemMeters) -> Instrument:
        def observe() -> Iterator[tuple[float, dict]]:
            yield read(), {}

        return Instrument(name, kind, unit, description, observe)

    return build


def _process_cpu_time(states: list[str], meters: SystemMeters) -> Instrument:
    def observe() -> Iterator[tuple[float, dict]]:
        times = process_reads().cpu_times()
        for state in states:
            if hasattr(times, state):
                yield getattr(times, state), {"type": state}

    return Instrument(names.PROCESS_CPU_TIME, COUNTER, "s", "Total CPU seconds broken down by different states.",
                      observe)


def _process_cpu_utilization(states: list[str], meters: SystemMeters) -> Instrument:
    def observe() -> Iterator[tuple[float, dict]]:
        yield meters.process_cpu.read() / 100 / meters.process_cpu.cpus, {}

    return Instrument(names.PROCESS_CPU_UTILIZATION, GAUGE, "1",
                      "Difference in process.cpu.time since the last measurement, divided by the elapsed time and "
                      "number of CPUs available to the process.", observe)


def _disks() -> Any:
    return shared_psutil.disk_io_counters(perdisk=True)


def _nics() -> Any:
    return shared_psutil.net_io_counters(pernic=True)


# In the contrib's order of registration, which is the order of the metrics in a collection.
_CONTRIB_DEFAULTS: dict[str, _Builder] = {
    names.SYSTEM_CPU_TIME: _per_cpu(names.SYSTEM_CPU_TIME, COUNTER, "s", "System CPU time",
                                    lambda: shared_psutil.cpu_times(percpu=True), 1),
    names.SYSTEM_CPU_UTILIZATION: _per_cpu(names.SYSTEM_CPU_UTILIZATION, GAUGE, "1", "System CPU utilization",
                                           None, 100),
    names.SYSTEM_MEMORY_USAGE: _by_state(names.SYSTEM_MEMORY_USAGE, "By", "System memory usage",
                                         lambda: shared_psutil.virtual_memory(), False),
    names.SYSTEM_MEMORY_UTILIZATION: _by_state(names.SYSTEM_MEMORY_UTILIZATION, "1", "System memory utilization",
                                               lambda: shared_psutil.virtual_memory(), True),
    # "pages" is the contrib's declared unit; the values are bytes (docs/meters.md).
    names.SYSTEM_SWAP_USAGE: _by_state(names.SYSTEM_SWAP_USAGE, "pages", "System swap usage",
                                       lambda: shared_psutil.swap_memory(), False),
    names.SYSTEM_SWAP_UTILIZATION: _by_state(names.SYSTEM_SWAP_UTILIZATION, "1", "System swap utilization",
                                             lambda: shared_psutil.swap_memory(), True),
    names.SYSTEM_DISK_IO: _per_device(names.SYSTEM_DISK_IO, "By", "System disk IO", _disks,
                                      {"read": "read_bytes", "write": "write_bytes"}),
    names.SYSTEM_NETWORK_IO: _per_device(names.SYSTEM_NETWORK_IO, "By", "System network io", _nics,
                                         {"receive": "bytes_recv", "transmit": "bytes_sent"}),
    names.PROCESS_CPU_TIME: _process_cpu_time,
    names.PROCESS_CPU_UTILIZATION: _process_cpu_utilization,
    names.PROCESS_MEMORY_USAGE: _process_value(names.PROCESS_MEMORY_USAGE, UP_DOWN_COUNTER, "By",
                                               "The amount of physical memory in use.",
                                               lambda: process_reads().memory_info().rss),
    names.PROCESS_MEMORY_VIRTUAL: _process_value(names.PROCESS_MEMORY_VIRTUAL, UP_DOWN_COUNTER, "By",
                                                 "The amount of committed virtual memory.",
                                                 lambda: process_reads().memory_info().vms),
    names.PROCESS_OPEN_FILE_DESCRIPTOR_COUNT: _process_value(
        names.PROCESS_OPEN_FILE_DESCRIPTOR_COUNT, UP_DOWN_COUNTER, "",
        "Number of file descriptors in use by the process.", lambda: process_reads().num_fds()),
    names.PROCESS_THREAD_COUNT: _process_value(names.PROCESS_THREAD_COUNT, UP_DOWN_COUNTER, "",
                                               "Process threads count.", lambda: process_reads().num_threads()),
}
if sys.platform == "win32":  # as the contrib: no file descriptor count there
    del _CONTRIB_DEFAULTS[names.PROCESS_OPEN_FILE_DESCRIPTOR_COUNT]


class _CurrentProcess:
    """The contrib's process: the shared reads of whichever process runs (a forked child's own), where
    the contrib keeps the Process of the one that started it."""

    def __getattr__(self, name: str) -> Any:
        return getattr(process_reads(), name)


# --- filesystems ---

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
    usage = shared_psutil.disk_usage(mountpoint)  # one statvfs per collection for metrics and host health
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
    """The contrib's default set and our additions as points built at collection time; the contrib
    instrumentor for the opt-in extras only."""

    def __init__(self, meter_provider: Any = None, mountpoints: Iterable[str] = (), extra: Iterable[str] = (),
                 filesystems: FilesystemList | None = None):
        self._meter_provider = meter_provider
        self._extra = tuple(extra)
        self.filesystems = filesystems or FilesystemList(mountpoints)
        self.cpu_percent = CpuTimesPercent()
        self.process_cpu = ProcessCpuPercent()
        self.groups: list[ObservedInstruments] = []
        self._instrumentor: Any = None
        self._pid = -1
        self._process_started = 0.0
        self._boot_time: float | None = None

    def start(self) -> None:
        import opentelemetry.instrumentation.system_metrics as contrib
        from opentelemetry.instrumentation.system_metrics.version import __version__ as contrib_version

        config = contrib_config(self._extra)
        ours = {name: states for name, states in config.items() if name in _CONTRIB_DEFAULTS}
        extras = {name: states for name, states in config.items() if name not in _CONTRIB_DEFAULTS}
        self.cpu_percent.start()  # the first collection's utilizations cover the time since start
        self.process_cpu.start()
        instruments = [build(ours[name] or [], self) for name, build in _CONTRIB_DEFAULTS.items() if name in ours]
        self.groups = [
            ObservedInstruments(self._meter_provider, contrib.__name__, contrib_version, instruments,
                                schema_url=CONTRIB_SCHEMA_URL, hook=collection),
            ObservedInstruments(self._meter_provider, SCOPE, __version__, self._additions(), hook=collection),
        ]
        if extras:
            self._start_contrib(extras)

    def _start_contrib(self, config: dict[str, Any]) -> None:
        import opentelemetry.instrumentation.system_metrics as contrib
        from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

        # A BaseInstrumentor is a per-class singleton: re-target it if a previous pipeline used it.
        instrumentor = SystemMetricsInstrumentor(config=config)
        if instrumentor.is_instrumented_by_opentelemetry:
            instrumentor.uninstrument()
        contrib.psutil = shared_psutil  # the contrib module's own name only: the application's psutil is untouched
        if isinstance(getattr(instrumentor, "_proc", None), psutil.Process):  # the contrib's Process of this process
            instrumentor._proc = _CurrentProcess()
        instrumentor.instrument(meter_provider=self._meter_provider)
        self._instrumentor = instrumentor

    def shutdown(self) -> None:
        if self._instrumentor is not None and self._instrumentor.is_instrumented_by_opentelemetry:
            self._instrumentor.uninstrument()

    def _additions(self) -> list[Instrument]:
        load = [(names.SYSTEM_CPU_LOAD_AVERAGE_1M, 0, "1"), (names.SYSTEM_CPU_LOAD_AVERAGE_5M, 1, "5"),
                (names.SYSTEM_CPU_LOAD_AVERAGE_15M, 2, "15")]
        return [
            Instrument(names.SYSTEM_FILESYSTEM_USAGE, UP_DOWN_COUNTER, "By",
                       "Filesystem space by state (used, free, reserved); the states add up to the size.",
                       self._filesystem_usage),
            Instrument(names.SYSTEM_FILESYSTEM_UTILIZATION, GAUGE, "1",
                       "Fraction of filesystem bytes used: used / (used + free), as df shows it.",
                       self._filesystem_utilization),
            *(Instrument(name, GAUGE, "{thread}", f"Average CPU load over the last {minutes} minute(s).",
                         self._load_average(index)) for name, index, minutes in load),
            Instrument(names.SYSTEM_UPTIME, GAUGE, "s", "The time the system has been running.", self._system_uptime),
            Instrument(names.SYSTEM_PROCESS_COUNT, UP_DOWN_COUNTER, "{process}", "Number of processes on the host.",
                       self._process_count),
            Instrument(names.PROCESS_UPTIME, GAUGE, "s", "The time the process has been running.",
                       self._process_uptime),
        ]

    # --- our additions; each reading fails alone, so one unreadable source never hides the others ---

    def _filesystem_usage(self) -> Iterator[tuple[float, dict]]:
        for fs in self.filesystems.get():
            try:
                usage = filesystem_usage(fs.mountpoint)
            except OSError:
                continue
            for state in ("used", "free", "reserved"):
                yield getattr(usage, state), {**fs.attributes, names.SYSTEM_FILESYSTEM_STATE: state}

    def _filesystem_utilization(self) -> Iterator[tuple[float, dict]]:
        for fs in self.filesystems.get():
            try:
                yield filesystem_usage(fs.mountpoint).utilization, fs.attributes
            except OSError:
                continue

    @staticmethod
    def _load_average(index: int) -> Callable[[], Iterator[tuple[float, dict]]]:
        def observe() -> Iterator[tuple[float, dict]]:
            yield shared_psutil.getloadavg()[index], {}

        return observe

    def _system_uptime(self) -> Iterator[tuple[float, dict]]:
        if self._boot_time is None:  # fixed for the life of the host; psutil re-reads /proc/stat each call
            self._boot_time = psutil.boot_time()
        yield time.time() - self._boot_time, {}

    @staticmethod
    def _process_count() -> Iterator[tuple[float, dict]]:
        yield len(shared_psutil.pids()), {}

    def _process_uptime(self) -> Iterator[tuple[float, dict]]:
        pid = os.getpid()
        if pid != self._pid:  # first call, or a forked child
            self._pid, self._process_started = pid, psutil.Process(pid).create_time()
        yield max(0.0, time.time() - self._process_started), {}
