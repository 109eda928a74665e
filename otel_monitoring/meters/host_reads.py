"""psutil, read once per collection and shared by every meter that needs the same source.

The system meters, host health and the contrib instrumentor (for the opt-in extras) read the same
sources: per-CPU times, memory, swap, disk and network counters, disk usage, this process's
``/proc`` files. ``shared_psutil`` and ``process_reads()`` answer repeated calls from one read:

- within one collection of a meter provider whose collect seam enters ``collection()`` (the
  system meters' direct path does), always: a collection reads each source once however long it
  takes;
- otherwise, and across collections, for ``TTL`` seconds (two readers collecting together share
  one read; the SDK's observable callbacks, which have no collection boundary, share this way).

The CPU utilizations are computed from those reads with psutil's own arithmetic, against samples
kept here: ``psutil.cpu_times_percent`` would read ``/proc/stat`` a second time (and keeps its
previous sample per calling thread), ``Process.cpu_percent`` the process's stat file.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sys
import threading
import time
from typing import Any, Callable, Iterable, Iterator

import psutil

from .locks import ForkSafeLock

__all__ = ["TTL", "CpuTimesPercent", "ProcessCpuPercent", "PsutilView", "SharedReads", "clear", "collection",
           "process_reads", "shared_psutil"]

TTL = 0.25  # seconds; readers exporting on the same tick share reads, and a source is never older than this
# Block devices that are not disks: loop mounts (snaps, images), RAM disks, compressed swap in RAM.
VIRTUAL_BLOCK_DEVICES = ("loop", "ram", "zram")
_SHARED_READS = ("cpu_times", "virtual_memory", "swap_memory", "disk_io_counters", "net_io_counters", "disk_usage",
                 "getloadavg", "pids")
# Process reads made by more than one metric (cpu_percent keeps state: never shared).
_SHARED_PROCESS_READS = ("memory_info", "cpu_times", "num_threads", "num_fds", "num_ctx_switches", "io_counters")

_generations = itertools.count(1)
_current: int | None = None  # the collection in progress, if a seam said so


@contextlib.contextmanager
def collection() -> Iterator[None]:
    """Every shared read inside is made at most once (the seam enters this around a collection)."""
    global _current
    previous, generation = _current, next(_generations)
    _current = generation
    try:
        yield
    finally:
        if _current == generation:  # another provider's collection may have started meanwhile
            _current = previous


class SharedReads:
    """``target`` with the calls named in ``shared`` answered from one read (see the module's docstring).
    Everything else goes to ``target`` as is."""

    def __init__(self, target: Any, shared: Iterable[str], ttl: float = TTL):
        self._target = target
        self._shared = frozenset(shared)
        self._ttl = ttl
        self._cache: dict[tuple, tuple[float, Any, int | None]] = {}

    def clear(self) -> None:
        """Forget the cached reads (benchmarks and tests: read every source afresh)."""
        self._cache.clear()

    def _adjust(self, name: str, result: Any) -> Any:
        return result

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name not in self._shared:
            return getattr(self._target, name)
        wrapper = self.__dict__[name] = self._wrap(name)  # found directly from now on
        return wrapper

    def _wrap(self, name: str) -> Callable[..., Any]:
        cache = self._cache
        ttl = self._ttl

        def shared(*args: Any, **kwargs: Any) -> Any:
            key = (name, args, tuple(sorted(kwargs.items()))) if kwargs else (name, args)
            hit = cache.get(key)  # dict reads and writes are atomic: no lock needed
            generation = _current
            if hit is not None and generation is not None and hit[2] == generation:
                return hit[1]
            now = time.monotonic()
            if hit is not None and now - hit[0] < ttl:
                if generation is not None:  # and keep it for the rest of this collection, however long
                    cache[key] = (hit[0], hit[1], generation)
                return hit[1]
            # Looked up at each read, so a patched psutil (tests) is seen.
            result = self._adjust(name, getattr(self._target, name)(*args, **kwargs))
            cache[key] = (now, result, generation)
            return result

        return shared


class PsutilView(SharedReads):
    """The ``psutil`` module as the meters (and the contrib instrumentor) see it: shared reads, and
    per-disk readings without virtual block devices (loop, ram, zram), which are most of the
    points on a typical host and no disk I/O. The application's psutil is untouched."""

    def __init__(self, ttl: float = TTL):
        super().__init__(psutil, _SHARED_READS, ttl)

    def _adjust(self, name: str, result: Any) -> Any:
        if name == "disk_io_counters" and isinstance(result, dict):
            return {device: counters for device, counters in result.items()
                    if not device.startswith(VIRTUAL_BLOCK_DEVICES)}
        return result


shared_psutil = PsutilView()

_process_lock = threading.Lock()
_process: tuple[int, SharedReads] | None = None


def process_reads() -> SharedReads:
    """This process's ``psutil.Process``, shared reads; a forked child gets its own."""
    global _process
    found, pid = _process, os.getpid()
    if found is None or found[0] != pid:
        with _process_lock:
            found = _process
            if found is None or found[0] != pid:
                found = _process = (pid, SharedReads(psutil.Process(pid), _SHARED_PROCESS_READS))
    return found[1]


def clear() -> None:
    """Forget every cached read."""
    shared_psutil.clear()
    if _process is not None:
        _process[1].clear()


# psutil leaves guest time out of the total on Linux, where user and nice already count it.
_LINUX = sys.platform.startswith("linux")


# A window shorter than this (CPU seconds of one CPU, about wall seconds) is too coarse at the
# kernel's 10 ms tick: a second reader arriving just after the first keeps the first's answer.
MIN_CPU_WINDOW_S = 0.25


def _total(t1: Any, t2: Any) -> tuple[list[float], float]:
    deltas = [max(0, getattr(t2, field) - getattr(t1, field)) for field in t2._fields]
    total = sum(deltas)
    if _LINUX:
        fields = t2._fields
        if "guest" in fields:
            total -= deltas[fields.index("guest")]
        if "guest_nice" in fields:
            total -= deltas[fields.index("guest_nice")]
    return deltas, total


def _times_percent(t1: Any, t2: Any) -> Any:
    """psutil.cpu_times_percent's arithmetic for one CPU between two samples (same rounding), but
    scaled by the window's own total: psutil divides by max(1, total), which, in seconds, reads
    every window shorter than one second as that fraction of its real percentages."""
    deltas, total = _total(t1, t2)
    scale = 100.0 / total if total > 0 else 0.0
    return type(t2)(*(min(max(0.0, round(delta * scale, 1)), 100.0) for delta in deltas))


class CpuTimesPercent:
    """``psutil.cpu_times_percent(percpu=True)`` from the shared per-CPU times: the percentages of
    each state per CPU since the previous sample (since ``start()`` the first time)."""

    def __init__(self) -> None:
        self._lock = ForkSafeLock()
        self._last: Any = None
        self._sample: Any = None
        self._result: list[Any] = []

    def start(self) -> None:
        with self._lock:
            if self._last is None:
                self._last = shared_psutil.cpu_times(percpu=True)

    def read(self) -> list[Any]:
        sample = shared_psutil.cpu_times(percpu=True)
        with self._lock:
            if sample is not self._sample:  # a shared read already computed gives the same answer
                last = sample if self._last is None else self._last
                if self._result and last and _total(last[0], sample[0])[1] < MIN_CPU_WINDOW_S:
                    return self._result  # too short to measure: the last window's answer stands
                self._result = [_times_percent(t1, t2) for t1, t2 in zip(last, sample)]
                self._last = self._sample = sample
            return self._result


class ProcessCpuPercent:
    """``Process.cpu_percent()`` (psutil's arithmetic and rounding) from the shared process CPU
    times: percent of one CPU used since the previous sample (since ``start()`` the first time)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = ForkSafeLock()
        self._cpus = 0
        self._last: tuple[Any, float, Any] | None = None  # (process reads, timer, cpu times)
        self._sample: Any = None
        self._result = 0.0

    @property
    def cpus(self) -> int:
        if not self._cpus:
            self._cpus = psutil.cpu_count() or 1
        return self._cpus

    def start(self) -> None:
        process = process_reads()
        times = process.cpu_times()
        with self._lock:
            if self._last is None or self._last[0] is not process:
                self._last = (process, self._clock() * self.cpus, times)

    def read(self) -> float:
        process = process_reads()
        times = process.cpu_times()
        with self._lock:
            if times is self._sample:
                return self._result
            timer = self._clock() * self.cpus
            last = self._last
            self._last, self._sample = (process, timer, times), times
            if last is None or last[0] is not process:  # first reading in this process
                self._result = 0.0
                return self._result
            delta_process = (times.user - last[2].user) + (times.system - last[2].system)
            try:
                self._result = round(delta_process / (timer - last[1]) * 100 * self.cpus, 1)
            except ZeroDivisionError:
                self._result = 0.0
            return self._result
