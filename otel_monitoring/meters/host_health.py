"""Host health: a score from 0 to 100 and a state, from CPU, memory and disk utilization.

Each resource scores by where its utilization ``u`` (percent) falls against its warning ``w``
and critical ``c`` thresholds:

- ``u < w``: 90 to 100 (100 at 0 %), so all resources below warning is EXCELLENT;
- ``w <= u < c``: 89 down towards 50 (GOOD first, then WARNING);
- ``u >= c``: 49 down to 0 (0 at 100 %): CRITICAL.

The host scores as its worst resource. States: EXCELLENT >= 90, GOOD >= 75, WARNING >= 50,
CRITICAL below (otel_monitoring.thresholds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Iterator, Mapping

from ..observed import GAUGE, Instrument, ObservedInstruments
from ..version import __version__
from .host_reads import collection, shared_psutil
from .locks import ForkSafeLock
from .system import FilesystemList, filesystem_usage
from .. import names
from ..thresholds import HOST_RESOURCE_THRESHOLDS, health_state

SCOPE = "otel_monitoring.meters.host_health"
STATES = ("EXCELLENT", "GOOD", "WARNING", "CRITICAL")


def resource_score(percent: float, warning: float, critical: float) -> float:
    percent = min(100.0, max(0.0, percent))
    if percent < warning:
        return 100.0 - 10.0 * percent / warning
    if percent < critical:
        return 89.0 - 39.0 * (percent - warning) / (critical - warning)
    return 49.0 * (100.0 - percent) / (100.0 - critical) if critical < 100 else 0.0


@dataclass(frozen=True)
class HostHealthReading:
    score: float
    state: str
    utilization: dict[str, float]  # resource -> fraction 0..1


def evaluate(utilization: Mapping[str, float], thresholds: Mapping[str, tuple[float, float]]) -> HostHealthReading:
    """Score the given utilization fractions (resources without a reading are left out)."""
    scores = [resource_score(value * 100.0, *thresholds[name]) for name, value in utilization.items()]
    score = round(min(scores), 2) if scores else 100.0
    return HostHealthReading(score, health_state(score), dict(utilization))


class CpuBusy:
    """Busy fraction of all CPUs over the last ``min_interval`` seconds or more (since boot at first).

    Keeps its own previous sample rather than psutil.cpu_percent's module-wide one, which the
    host application may be calling too; readings closer together than ``min_interval`` return
    the previous value, since a few milliseconds of CPU time say nothing.
    """

    def __init__(self, min_interval: float = 1.0) -> None:
        self._min_interval = min_interval
        self._last: tuple[float, float, float] | None = None  # (monotonic time, cpu total, cpu idle)
        self._value = 0.0
        self._lock = ForkSafeLock()

    @staticmethod
    def _sample() -> tuple[float, float]:
        total = idle = 0.0
        # Per CPU, as system.cpu.time reads them in the same collection (one /proc/stat read for both).
        for times in shared_psutil.cpu_times(percpu=True):
            # Linux counts guest time inside user and nice already.
            total += sum(times) - getattr(times, "guest", 0.0) - getattr(times, "guest_nice", 0.0)
            idle += times.idle + getattr(times, "iowait", 0.0)
        return total, idle

    def read(self) -> float:
        now = time.monotonic()
        with self._lock:
            if self._last is not None and now - self._last[0] < self._min_interval:
                return self._value
            total, idle = self._sample()
            _, last_total, last_idle = self._last or (0.0, 0.0, 0.0)
            self._last = (now, total, idle)
            elapsed = total - last_total
            if elapsed > 0:
                self._value = min(1.0, max(0.0, 1.0 - (idle - last_idle) / elapsed))
            return self._value


def memory_utilization() -> float:
    memory = shared_psutil.virtual_memory()  # the read the contrib's memory metrics make in this collection
    return 1.0 - memory.available / memory.total if memory.total else 0.0


class HostHealth:
    """Reads CPU, memory and disk, scores them, and reports the score as metrics.

    One reading serves the three callbacks of a collection (readings younger than ``max_age`` are reused).
    """

    def __init__(self, thresholds: Mapping[str, tuple[float, float]] | None = None,
                 filesystems: FilesystemList | None = None, max_age: float = 0.25):
        self.thresholds = dict(thresholds or HOST_RESOURCE_THRESHOLDS)
        self.filesystems = filesystems or FilesystemList()
        self.cpu = CpuBusy()
        self._max_age = max_age
        self._reading: HostHealthReading | None = None
        self._read_at = float("-inf")
        self._lock = ForkSafeLock()

    def disk_utilization(self) -> float | None:
        values = []
        for fs in self.filesystems.get():
            try:
                values.append(filesystem_usage(fs.mountpoint).utilization)
            except OSError:
                continue
        return max(values) if values else None

    def read(self, max_age: float | None = None) -> HostHealthReading:
        """The reading, taken now unless the last one is younger than ``max_age`` seconds."""
        max_age = self._max_age if max_age is None else max_age
        with self._lock:
            now = time.monotonic()
            if self._reading is None or now - self._read_at >= max_age:
                utilization = {"cpu": self.cpu.read(), "memory": memory_utilization()}
                disk = self.disk_utilization()
                if disk is not None:
                    utilization["disk"] = disk
                self._reading, self._read_at = evaluate(utilization, self.thresholds), now
            return self._reading

    def observe(self, meter_provider: Any = None) -> ObservedInstruments:
        return ObservedInstruments(meter_provider, SCOPE, __version__, [
            Instrument(names.HOST_HEALTH_SCORE, GAUGE, "{score}",
                       "Host health from 0 to 100: the worst of CPU, memory and disk against their thresholds.",
                       self._score),
            Instrument(names.HOST_HEALTH_STATUS, GAUGE, "1",
                       "1 for the current host health state (EXCELLENT, GOOD, WARNING, CRITICAL), 0 for the others.",
                       self._status),
            Instrument(names.HOST_RESOURCE_UTILIZATION, GAUGE, "1",
                       "CPU busy, memory used (1 - available/total) and fullest-disk fractions the score uses.",
                       self._utilization),
        ], hook=collection)

    def _score(self) -> Iterator[tuple[float, dict]]:
        yield self.read().score, {}

    def _status(self) -> Iterator[tuple[float, dict]]:
        state = self.read().state
        for name in STATES:
            yield 1 if name == state else 0, {names.HOST_HEALTH_STATE: name}

    def _utilization(self) -> Iterator[tuple[float, dict]]:
        for resource, value in self.read().utilization.items():
            yield value, {names.HOST_RESOURCE: resource}
