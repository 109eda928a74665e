"""Live snapshots: every collection, the process' own metrics go to ``metrics_live.json``.

``SnapshotExporter`` is a ``MetricExporter`` driven by the SDK's ``PeriodicExportingMetricReader``
(``make_snapshot_reader``), so it runs with no collector and alongside OTLP export, and the
provider's shutdown writes a last snapshot. Each collection is flattened into ``Point``s, which
the alert engine evaluates (through ``on_collection`` hooks) and the history store keeps.
The file format is the contract in docs/snapshots.md.
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Sequence

from opentelemetry.sdk.metrics.export import (
    ExponentialHistogram,
    Gauge,
    Histogram,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    PeriodicExportingMetricReader,
    Sum,
)

from ..meters.locks import collecting
from .files import atomic_write_json
from .history import HistoryStore
from .processes import live_file, process_key, write_directory_totals
from .. import names

__all__ = ["LIVE_FILE", "Point", "SnapshotExporter", "bucket_quantile", "iso_time", "make_snapshot_reader",
           "points_from_metrics_data"]

_logger = logging.getLogger("otel_monitoring.local")

LIVE_FILE = "metrics_live.json"
SNAPSHOT_SCHEMA = 1
MIN_INTERVAL_S = 0.5
# Percentiles describe the last few minutes (from bucket differences), as operators read "now";
# the since-start ones stay in each histogram entry under "since_start".
DEFAULT_PERCENTILE_WINDOW_S = 300.0
QUANTILES = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


@dataclass
class Point:
    """One series at one collection: a counter, a gauge or a histogram (with its buckets)."""

    name: str
    kind: str  # "counter" (monotonic sum), "gauge" (gauge or non-monotonic sum), "histogram"
    unit: str
    attributes: dict[str, Any]
    value: float = 0.0  # counters and gauges
    count: int = 0  # histograms
    sum: float = 0.0
    min: float | None = None
    max: float | None = None
    bounds: Sequence[float] = field(default_factory=tuple)  # upper bounds; len(counts) == len(bounds) + 1
    counts: Sequence[int] = field(default_factory=tuple)

    @property
    def key(self) -> tuple[str, str]:
        return self.name, json.dumps(self.attributes, sort_keys=True, default=str)


def iso_time(unix: float) -> str:
    return datetime.fromtimestamp(unix, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def _exponential_to_explicit(point: Any) -> tuple[list[float], list[int]]:
    """Exponential buckets as explicit upper bounds (positive range and zero bucket only)."""
    base = 2.0 ** (2.0 ** -point.scale)
    offset = point.positive.offset
    positive = list(point.positive.bucket_counts)
    negative_total = sum(point.negative.bucket_counts)
    bounds = [0.0] + [base ** (offset + i + 1) for i in range(len(positive))]
    counts = [negative_total + point.zero_count] + positive + [0]
    return bounds, counts


def points_from_metrics_data(metrics_data: MetricsData | None) -> list[Point]:
    points: list[Point] = []
    if metrics_data is None:
        return points
    for resource_metrics in metrics_data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                data, unit = metric.data, metric.unit or ""
                for dp in data.data_points:
                    attributes = dict(dp.attributes or {})
                    if isinstance(data, Sum):
                        kind = "counter" if data.is_monotonic else "gauge"
                        points.append(Point(metric.name, kind, unit, attributes, value=float(dp.value)))
                    elif isinstance(data, Gauge):
                        points.append(Point(metric.name, "gauge", unit, attributes, value=float(dp.value)))
                    elif isinstance(data, Histogram):
                        points.append(Point(metric.name, "histogram", unit, attributes, count=dp.count,
                                            sum=float(dp.sum), min=_finite(dp.min), max=_finite(dp.max),
                                            bounds=tuple(dp.explicit_bounds), counts=tuple(dp.bucket_counts)))
                    elif isinstance(data, ExponentialHistogram):
                        bounds, counts = _exponential_to_explicit(dp)
                        points.append(Point(metric.name, "histogram", unit, attributes, count=dp.count,
                                            sum=float(dp.sum), min=_finite(dp.min), max=_finite(dp.max),
                                            bounds=bounds, counts=counts))
    return points


def bucket_quantile(q: float, bounds: Sequence[float], counts: Sequence[int],
                    minimum: float | None = None, maximum: float | None = None) -> float | None:
    """Estimate the ``q`` quantile from histogram buckets: find the bucket holding the rank and
    interpolate linearly inside it; the open-ended first and last buckets are closed by the
    observed min and max, and the result is clamped to them. None when there is no observation."""
    total = sum(counts)
    if total <= 0:
        return None
    rank = q * total
    cumulative = 0
    for index, count in enumerate(counts):
        if count == 0 or cumulative + count < rank:
            cumulative += count
            continue
        lower = bounds[index - 1] if index > 0 else (minimum if minimum is not None else (bounds[0] if bounds else 0.0))
        upper = bounds[index] if index < len(bounds) else (maximum if maximum is not None else lower)
        if minimum is not None:
            lower = max(lower, minimum)
        if maximum is not None:
            upper = min(upper, maximum)
        upper = max(upper, lower)
        # min(): at the bucket's top, float rounding (0.001 + 0.0015) must not step into the next bucket
        estimate = min(upper, lower + (upper - lower) * max(0.0, rank - cumulative) / count)
        if minimum is not None:
            estimate = max(estimate, minimum)
        if maximum is not None:
            estimate = min(estimate, maximum)
        return estimate
    return maximum


def window_counts(counts: Sequence[int], base: Sequence[int] | None) -> list[int]:
    """The bucket counts since ``base`` (the same series' counts at the window's start); all of them
    when there is no base (the series began inside the window) or the series restarted."""
    if base is None or len(base) != len(counts):
        return list(counts)
    deltas = [c - b for c, b in zip(counts, base)]
    return list(counts) if any(d < 0 for d in deltas) else deltas


def build_snapshot(points: list[Point], now: float, interval_s: float, service: dict[str, Any],
                   previous: dict[tuple[str, str], tuple[float, ...]],
                   window_base: dict[tuple[str, str], Sequence[int]] | None = None,
                   window_s: float = DEFAULT_PERCENTILE_WINDOW_S) -> dict[str, Any]:
    """The metrics_live.json document. ``previous`` maps counter keys to (time, value) of the last
    collection and of the one before it, for ``rate_per_s``; it is updated in place. A collection
    less than half an interval after the last one (the final one at shutdown, a flush) measures its
    rate from the one before: over a few milliseconds a counter's rate reads 0 or, at the clock's
    granularity, impossibly high. ``window_base`` maps histogram keys to their bucket counts at the
    start of the percentile window (none: everything is in the window)."""
    counters: dict[str, list] = {}
    gauges: dict[str, list] = {}
    histograms: dict[str, list] = {}
    units: dict[str, str] = {}
    for point in points:
        if point.unit:
            units[point.name] = point.unit
        if point.kind == "counter":
            last = previous.get(point.key)
            rate = 0.0
            if last is not None:
                since, base = last[0], last[1]
                if now - since < interval_s / 2 and len(last) > 2:
                    since, base = last[2], last[3]
                if now > since:
                    delta = point.value - base
                    rate = (delta if delta >= 0 else point.value) / (now - since)  # a drop means a restart
                previous[point.key] = (now, point.value, last[0], last[1])
            else:
                previous[point.key] = (now, point.value)
            counters.setdefault(point.name, []).append(
                {"attributes": point.attributes, "value": _finite(point.value), "rate_per_s": _finite(rate)})
        elif point.kind == "gauge":
            gauges.setdefault(point.name, []).append({"attributes": point.attributes, "value": _finite(point.value)})
        else:
            entry: dict[str, Any] = {"attributes": point.attributes, "count": point.count, "sum": _finite(point.sum),
                                     "min": point.min, "max": point.max}
            recent = window_counts(point.counts, (window_base or {}).get(point.key))
            entry["window_count"] = sum(recent)
            for label, q in QUANTILES:
                entry[label] = _finite(bucket_quantile(q, point.bounds, recent, point.min, point.max))
            entry["since_start"] = {label: _finite(bucket_quantile(q, point.bounds, point.counts, point.min, point.max))
                                    for label, q in QUANTILES}
            entry["bounds"] = [float(b) for b in point.bounds]
            entry["counts"] = [int(c) for c in point.counts]
            histograms.setdefault(point.name, []).append(entry)
    return {
        "schema": SNAPSHOT_SCHEMA,
        "timestamp": iso_time(now),
        "timestamp_unix": round(now, 3),
        "interval_s": interval_s,
        "percentile_window_s": window_s,
        "service": service,
        "counters": counters,
        "gauges": gauges,
        "histograms": histograms,
        "units": units,
    }


CollectionHook = Callable[[list, float], None]


class SnapshotExporter(MetricExporter):
    """Writes metrics_live.json each export, appends to the history every ``history_interval_s``,
    then runs the ``on_collection`` hooks (the alert engine) with the points and the time.

    Never raises into the SDK: a failing write or hook is logged once per kind of failure.
    """

    def __init__(self, directory: str, interval_s: float = 5.0, history: HistoryStore | None = None,
                 history_interval_s: float = 60.0, service: dict[str, Any] | None = None,
                 clock: Callable[[], float] = time.time, percentile_window_s: float = DEFAULT_PERCENTILE_WINDOW_S):
        super().__init__()
        self.directory = directory
        self.resource: Any = None  # the pipeline's Resource: service and process identity, read at each write
        self.interval_s = interval_s
        self.history = history
        self.history_interval_s = history_interval_s
        self.service = service or {"name": None, "instance_id": None, "host": socket.gethostname()}
        self.clock = clock
        self.on_collection: list[CollectionHook] = []
        self.started_unix = round(clock(), 3)
        self.last_snapshot: dict[str, Any] | None = None
        self._previous: dict[tuple[str, str], tuple[float, ...]] = {}
        self.percentile_window_s = percentile_window_s
        # (time, {histogram key: bucket counts}) of past collections, back to the window's start.
        self._buckets: deque[tuple[float, dict[tuple[str, str], tuple[int, ...]]]] = deque()
        self._last_history = -math.inf
        self._lock = threading.Lock()
        self._failures_logged: set[str] = set()

    @property
    def process_key(self) -> str:
        return process_key((self.service or {}).get("name"))

    @property
    def path(self) -> str:
        """This process' own snapshot file (see local/processes.py); ``metrics_live.json`` is the total."""
        return live_file(self.directory, self.process_key)

    @property
    def total_path(self) -> str:
        return os.path.join(self.directory, LIVE_FILE)

    def service_info(self) -> dict[str, Any]:
        """Who wrote the snapshot; re-read each time, as a forked worker gets its own pid and id."""
        service = dict(self.service or {})
        attributes = getattr(self.resource, "attributes", None) or {}
        if names.SERVICE_INSTANCE_ID in attributes:
            service["instance_id"] = attributes[names.SERVICE_INSTANCE_ID]
        service["pid"] = os.getpid()
        return service

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        with collecting(self._lock):  # not waited for long when a stopped main thread holds it
            now = self.clock()
            points = points_from_metrics_data(metrics_data)
            return self.process(points, now)

    def process(self, points: list[Point], now: float) -> MetricExportResult:
        """One collection: snapshot file, history, hooks. Public so tests can drive it with a clock."""
        result = MetricExportResult.SUCCESS
        snapshot = build_snapshot(points, now, self.interval_s, self.service_info(), self._previous,
                                  self._window_base(points, now), self.percentile_window_s)
        snapshot["started_unix"] = self.started_unix  # tells a restart from processes that ran together
        self.last_snapshot = snapshot
        try:
            atomic_write_json(self.path, snapshot)
        except Exception as error:  # noqa: BLE001 - a full disk must not break the app
            self._log_once("write", "otel-monitoring: cannot write %s (%s); snapshots paused", self.path, error)
            result = MetricExportResult.FAILURE
        if self.history is not None and now - self._last_history >= self.history_interval_s:
            try:
                self.history.record_snapshot(snapshot, self.history_interval_s)
                self._last_history = now
            except Exception as error:  # noqa: BLE001 - a failing store must not stop the snapshots
                self._log_once("history", "otel-monitoring: cannot append to %s (%s)", self.history.path, error)
        for hook in list(self.on_collection):
            try:
                hook(points, now)
            except Exception:  # noqa: BLE001 - an alerting bug must not stop the snapshots
                self._log_once(f"hook {hook!r}", "otel-monitoring: collection hook %r failed", hook, exc_info=True)
        try:  # after the hooks: the alert engine has written this process' alerts by now
            write_directory_totals(self.directory)
        except Exception as error:  # noqa: BLE001 - a failing store must not stop the snapshots
            self._log_once("totals", "otel-monitoring: cannot write the directory totals in %s (%s)",
                           self.directory, error)
        return result

    def _window_base(self, points: list[Point], now: float) -> dict[tuple[str, str], tuple[int, ...]]:
        """The bucket counts at the start of the percentile window (the newest collection at or
        before it), then remembers this collection's. Empty while the process is younger than the
        window: everything it recorded is then inside the window."""
        start = now - self.percentile_window_s
        while len(self._buckets) > 1 and self._buckets[1][0] <= start:
            self._buckets.popleft()
        base = self._buckets[0][1] if self._buckets and self._buckets[0][0] <= start else {}
        self._buckets.append((now, {p.key: tuple(p.counts) for p in points if p.kind == "histogram"}))
        return base

    def _log_once(self, kind: str, message: str, *args: Any, exc_info: bool = False) -> None:
        if kind not in self._failures_logged:
            self._failures_logged.add(kind)
            _logger.warning(message, *args, exc_info=exc_info)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        """After the reader's last export: the process' file says it ended, so the directory's
        total leaves it out as soon as another process (a restart) writes, rather than showing its
        readings (a budget limit the restart changed, its firing alerts) for three more intervals."""
        with collecting(self._lock):
            snapshot = self.last_snapshot
            if snapshot is not None and not snapshot.get("ended") and snapshot["service"].get("pid") == os.getpid():
                snapshot["ended"] = True
                try:
                    atomic_write_json(self.path, snapshot)
                    write_directory_totals(self.directory)
                except Exception as error:  # noqa: BLE001 - shutdown must not fail on a full disk
                    self._log_once("write", "otel-monitoring: cannot write %s (%s); snapshots paused", self.path, error)
        if self.history is not None:
            self.history.close()


def make_snapshot_reader(exporter: SnapshotExporter) -> PeriodicExportingMetricReader:
    """The SDK's periodic reader around the exporter, at the exporter's interval (minimum 0.5 s)."""
    interval = max(MIN_INTERVAL_S, exporter.interval_s)
    return PeriodicExportingMetricReader(exporter, export_interval_millis=interval * 1000,
                                         export_timeout_millis=max(interval, 5.0) * 1000)
