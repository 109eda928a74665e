"""Histograms aggregated in the process and handed to every metric reader at collection time.

An SDK ``histogram.record`` costs about 10 µs (a Measurement, attribute cleaning and hashing,
one aggregation per reader, an exemplar offer). Code that records on every call (the RED
duration of each wrapped call, a market-data message's latency) keeps its own aggregation
instead: per attribute set, the bucket counts, sum, count, min, max and the last exemplar per
bucket, updated under one uncontended lock (well under a microsecond).

The Python SDK has no MetricProducer, so the seam is the one callable a ``MeterProvider`` gives
each of its readers to collect with (``SynchronousMeasurementConsumer.collect``): ``install``
wraps it once per provider, and every reader (periodic exporters, the local snapshot reader,
Prometheus, an in-memory reader, one added later) receives, in the same ``MetricsData``, ordinary
``Histogram`` points of our histograms beside the SDK's own: same instrumentation scope, its
temporality (cumulative or delta per reader, min and max per reader's interval), exemplars of
sampled spans (the SDK's default trace-based filter; none with ``always_off``).

The same seam hands over metrics that ``otel_monitoring.observed`` builds at collection time
(the system meters), and only ever wraps the provider's own readers.

Not honoured for these histograms: Views (rename, drop, other buckets) and a reader asking for
exponential histograms; they always come out as explicit-bucket histograms with their own bounds.
A provider that is not the SDK's (or an SDK without the seam) gets plain ``record`` calls instead,
so the data is never lost, only slower.

Use::

    histogram = preaggregation.histogram(meter_provider, "my.scope", "my.duration", unit="s",
                                         description="...", boundaries=(0.005, 0.01, ...))
    series = histogram.series({"component": "x"})   # once per attribute set; keep it
    series.record(0.012, span)                      # per call; span (optional) gives the exemplar
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import weakref
from bisect import bisect_left
from time import time_ns
from types import SimpleNamespace
from typing import Any, Iterable, Mapping, Sequence

from opentelemetry.trace import SpanContext, TraceFlags

from .meters.locks import collecting

_logger = logging.getLogger("otel_monitoring.preaggregation")

__all__ = ["AggregatedHistogram", "HistogramSeries", "histogram", "install", "span_ids"]

_INF = float("inf")
_exemplar_order = itertools.count(1)  # newer exemplar wins when windows merge


class _Accumulator:
    """A reader's view of one series: what it has not exported yet (delta) or everything (cumulative)."""

    __slots__ = ("counts", "sum", "count", "min", "max", "exemplars", "start")

    def __init__(self, buckets: int, start: int):
        self.counts = [0] * buckets
        self.sum = 0.0
        self.count = 0
        self.min = _INF
        self.max = -_INF
        self.exemplars: list[tuple | None] = [None] * buckets
        self.start = start

    def merge(self, counts: list[int], total: float, count: int, low: float, high: float,
              exemplars: list[tuple | None]) -> None:
        mine = self.counts
        for index, value in enumerate(counts):
            if value:
                mine[index] += value
        self.sum += total
        self.count += count
        if low < self.min:
            self.min = low
        if high > self.max:
            self.max = high
        mine_exemplars = self.exemplars
        for index, exemplar in enumerate(exemplars):
            if exemplar is not None:
                current = mine_exemplars[index]
                if current is None or current[4] < exemplar[4]:
                    mine_exemplars[index] = exemplar


def span_ids(span: Any) -> tuple[int, int, bool, bool]:
    """(trace id, span id, sampled, valid) of a span: read once when one call records several
    measurements with the same exemplar span (each read is four property calls)."""
    context = span.get_span_context()
    if type(context) is SpanContext:  # the API's tuple (trace id, span id, remote, flags, state, valid)
        return context[0], context[1], bool(context[3] & TraceFlags.SAMPLED), context[5]
    return context.trace_id, context.span_id, context.trace_flags.sampled, context.is_valid


class HistogramSeries:
    """One attribute set of one histogram. ``record`` is the hot path: no allocation, one lock."""

    __slots__ = ("attributes", "_bounds", "_lock", "_counts", "_sum", "_count", "_min", "_max",
                 "_exemplars", "_with_exemplars", "_unsampled_exemplars", "_readers", "_created",
                 "_fallback", "__weakref__")

    def __init__(self, attributes: Mapping[str, Any], bounds: Sequence[float], exemplar_mode: str,
                 fallback: Any = None):
        self.attributes = dict(attributes)
        self._bounds = tuple(bounds)
        buckets = len(self._bounds) + 1
        self._lock = threading.Lock()
        self._counts = [0] * buckets
        self._sum = 0.0
        self._count = 0
        self._min = _INF
        self._max = -_INF
        self._exemplars: list[tuple | None] = [None] * buckets
        self._with_exemplars = exemplar_mode != "off"
        self._unsampled_exemplars = exemplar_mode == "on"
        self._readers: dict[Any, _Accumulator] = {}  # reader -> its accumulator (collection side)
        self._created = time_ns()
        self._fallback = fallback  # an SDK-API histogram when the provider has no seam

    def record(self, value: float, span: Any = None) -> None:
        """Add one measurement; ``span`` (the call's span, ended or not, or its ``span_ids``)
        makes it an exemplar when sampled. Never raises for a number."""
        fallback = self._fallback
        if fallback is not None:
            fallback(value, span)
            return
        index = bisect_left(self._bounds, value)  # (bound[i-1], bound[i]] as the SDK buckets
        with self._lock:
            self._counts[index] += 1
            self._sum += value
            self._count += 1
            if value < self._min:
                self._min = value
            if value > self._max:
                self._max = value
        if span is not None and self._with_exemplars:
            ids = span if type(span) is tuple else span_ids(span)
            if ids[2] or (self._unsampled_exemplars and ids[3]):
                self._exemplars[index] = (value, time_ns(), ids[0], ids[1], next(_exemplar_order))

    # -- collection side --

    def _close_window(self, readers: Iterable[Any]) -> None:
        """Move what was recorded since the last collection into every reader's accumulator."""
        buckets = len(self._counts)
        # Not held: the main thread, stopped in a flush's signal handler, holds it (see
        # meters.locks.collecting). A measurement it was adding may be in its bucket only: the
        # count is the buckets' sum, so the point stays consistent.
        with collecting(self._lock) as held:
            if not self._count and not any(self._exemplars) and (held or not any(self._counts)):
                counts = None
            else:
                counts, total, count, low, high = self._counts, self._sum, self._count, self._min, self._max
                if not held:
                    count = sum(counts)
                exemplars = self._exemplars
                self._counts = [0] * buckets
                self._sum, self._count, self._min, self._max = 0.0, 0, _INF, -_INF
                self._exemplars = [None] * buckets
        for reader in readers:
            accumulator = self._readers.get(reader)
            if accumulator is None:
                accumulator = self._readers[reader] = _Accumulator(buckets, self._created)
            if counts is not None:
                accumulator.merge(counts, total, count, low, high, exemplars)

    def _point(self, reader: Any, delta: bool, now: int) -> Any:
        accumulator = self._readers.get(reader)
        if accumulator is None or not accumulator.count:
            if accumulator is not None and delta:
                accumulator.start = now
            return None
        point = sdk_types().HistogramDataPoint(
            attributes=self.attributes, start_time_unix_nano=accumulator.start, time_unix_nano=now,
            count=accumulator.count, sum=accumulator.sum, bucket_counts=list(accumulator.counts),
            explicit_bounds=list(self._bounds), min=accumulator.min, max=accumulator.max,
            exemplars=_exemplars(accumulator.exemplars),
        )
        accumulator.exemplars = [None] * len(accumulator.counts)  # as the SDK's reservoirs: once
        if delta:
            buckets = len(accumulator.counts)
            accumulator.counts = [0] * buckets
            accumulator.sum, accumulator.count, accumulator.min, accumulator.max = 0.0, 0, _INF, -_INF
            accumulator.start = now
        return point


def _exemplars(found: list[tuple | None]) -> list[Any]:
    exemplar = sdk_types().Exemplar
    return [exemplar(None, value, time, span_id, trace_id)
            for value, time, trace_id, span_id, _ in (e for e in found if e is not None)]


class AggregatedHistogram:
    """One histogram (name, unit, bounds) of one instrumentation scope of one meter provider."""

    def __init__(self, meter_provider: Any, scope: str, version: str | None, name: str, unit: str,
                 description: str, boundaries: Sequence[float]):
        self.scope = scope
        self.version = version
        self.name = name
        self.unit = unit
        self.description = description
        self.boundaries = tuple(float(b) for b in boundaries)
        self._lock = threading.Lock()
        self._series: dict[tuple, HistogramSeries] = {}
        self._seam = install(meter_provider)
        self._exemplar_mode = _exemplar_mode(meter_provider)
        self._sdk_histogram = None
        if self._seam is None:  # not the SDK's provider: record through its API, one call each
            self._sdk_histogram = meter_provider.get_meter(scope, version).create_histogram(
                name, unit=unit, description=description,
                explicit_bucket_boundaries_advisory=list(self.boundaries))
        else:
            self._seam.add(self)

    def series(self, attributes: Mapping[str, Any]) -> HistogramSeries:
        """The series of ``attributes`` (made once; keep it and call ``record`` on it)."""
        key = tuple(sorted(attributes.items()))
        found = self._series.get(key)
        if found is None:
            with self._lock:
                found = self._series.get(key)
                if found is None:
                    fallback = None
                    if self._sdk_histogram is not None:
                        fallback = _api_recorder(self._sdk_histogram, dict(attributes))
                    found = self._series[key] = HistogramSeries(attributes, self.boundaries,
                                                                self._exemplar_mode, fallback)
        return found

    def _metric(self, reader: Any, readers: list[Any], delta: bool, now: int) -> Any:
        sdk = sdk_types()
        points = []
        for series in list(self._series.values()):
            series._close_window(readers)
            point = series._point(reader, delta, now)
            if point is not None:
                points.append(point)
        if not points:
            return None
        temporality = sdk.AggregationTemporality.DELTA if delta else sdk.AggregationTemporality.CUMULATIVE
        return sdk.Metric(name=self.name, description=self.description, unit=self.unit,
                          data=sdk.Histogram(data_points=points, aggregation_temporality=temporality))


def _api_recorder(histogram: Any, attributes: dict[str, Any]) -> Any:
    from opentelemetry.trace import set_span_in_context

    def record(value: float, span: Any) -> None:
        histogram.record(value, attributes, set_span_in_context(span) if span is not None else None)

    return record


def _exemplar_mode(meter_provider: Any) -> str:
    config = getattr(meter_provider, "_sdk_config", None)
    name = type(getattr(config, "exemplar_filter", None)).__name__
    return {"AlwaysOffExemplarFilter": "off", "AlwaysOnExemplarFilter": "on"}.get(name, "trace_based")


class _Seam:
    """The wrapped collect callable of one SDK meter provider and what it adds to each collection:
    the aggregated histograms, and producers of ready-made metrics (``otel_monitoring.observed``)."""

    def __init__(self, meter_provider: Any, consumer: Any):
        self._provider = weakref.ref(meter_provider)
        self._consumer = consumer
        self._consumer_collect = consumer.collect
        self._histograms: list[AggregatedHistogram] = []
        self._producers: list[Any] = []
        self._hooks: list[Any] = []
        self._lock = threading.Lock()  # one collection at a time closes windows and emits

    def add(self, histogram: AggregatedHistogram) -> None:
        with self._lock:
            self._histograms = [*self._histograms, histogram]

    def add_producer(self, producer: Any, hook: Any = None) -> None:
        """``producer.collect(reader)`` returns ``(InstrumentationScope, [Metric, ...])`` or None at each
        reader's collection. ``hook()``, if given (once however many producers name it), returns a
        context manager entered around the whole collection, the SDK's callbacks included."""
        with self._lock:
            self._producers = [*self._producers, producer]
            if hook is not None and hook not in self._hooks:
                self._hooks = [*self._hooks, hook]

    def collect(self, reader: Any, timeout_millis: float = 10_000) -> Any:
        hooks = self._hooks
        if not hooks:
            return self._collect(reader, timeout_millis)
        with contextlib.ExitStack() as stack:
            for hook in hooks:
                stack.enter_context(hook())
            return self._collect(reader, timeout_millis)

    def _collect(self, reader: Any, timeout_millis: float) -> Any:
        data = self._consumer_collect(reader, timeout_millis=timeout_millis)
        try:
            return self._merge(data, reader)
        except Exception:  # the SDK's own metrics still go out
            _logger.warning("otel-monitoring: adding pre-aggregated metrics to a collection failed",
                            exc_info=True)
            return data

    def _merge(self, data: Any, reader: Any) -> Any:
        sdk = sdk_types()
        provider = self._provider()
        if provider is None or not (self._histograms or self._producers):
            return data
        delta = reader._instrument_class_temporality.get(sdk._Histogram) == sdk.AggregationTemporality.DELTA
        readers = _readers_of(self._consumer) or [reader]
        now = time_ns()
        # (scope name, version) -> [scope to use if the SDK's data has none, metrics]
        by_scope: dict[tuple, list[Any]] = {}
        with collecting(self._lock):
            for histogram in self._histograms:
                metric = histogram._metric(reader, readers, delta, now)
                if metric is not None:
                    key = (histogram.scope, histogram.version)
                    by_scope.setdefault(key, [None, []])[1].append(metric)
        for producer in self._producers:  # each has its own lock: ours is not held while they read
            produced = producer.collect(reader)
            if produced:
                scope, metrics = produced
                entry = by_scope.setdefault((scope.name, scope.version), [None, []])
                entry[0] = entry[0] or scope
                entry[1].extend(metrics)
        if not by_scope:
            return data
        resource = provider._sdk_config.resource
        resource_metrics = list(data.resource_metrics) if data is not None else []
        if not resource_metrics:
            resource_metrics = [sdk.ResourceMetrics(resource=resource, scope_metrics=[], schema_url=resource.schema_url)]
        first = resource_metrics[0]
        scope_metrics = list(first.scope_metrics)
        for (name, version), (own_scope, found) in by_scope.items():
            for index, existing in enumerate(scope_metrics):
                if existing.scope.name == name and existing.scope.version == version:
                    scope_metrics[index] = sdk.ScopeMetrics(scope=existing.scope, metrics=[*existing.metrics, *found],
                                                        schema_url=existing.schema_url)
                    break
            else:
                scope = own_scope or sdk.InstrumentationScope(name, version)
                scope_metrics.append(sdk.ScopeMetrics(scope=scope, metrics=found,
                                                  schema_url=scope.schema_url if own_scope else ""))
        resource_metrics[0] = sdk.ResourceMetrics(resource=first.resource, scope_metrics=scope_metrics,
                                              schema_url=first.schema_url)
        return sdk.MetricsData(resource_metrics=resource_metrics)


_sdk_types: Any = None


def sdk_types() -> Any:
    """The SDK's metric data classes, imported once (``from opentelemetry.sdk.metrics.export import``
    costs tens of µs per execution, too much for every series of every collection)."""
    global _sdk_types
    if _sdk_types is None:
        from opentelemetry.sdk.metrics._internal.exemplar import Exemplar
        from opentelemetry.sdk.metrics._internal.instrument import (_Histogram, _ObservableCounter, _ObservableGauge,
                                                                    _ObservableUpDownCounter)
        from opentelemetry.sdk.metrics.export import (AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
                                                      Metric, MetricsData, NumberDataPoint, ResourceMetrics,
                                                      ScopeMetrics, Sum)
        from opentelemetry.sdk.util.instrumentation import InstrumentationScope

        _sdk_types = SimpleNamespace(
            AggregationTemporality=AggregationTemporality, Exemplar=Exemplar, Gauge=Gauge, Histogram=Histogram,
            HistogramDataPoint=HistogramDataPoint, InstrumentationScope=InstrumentationScope, Metric=Metric,
            MetricsData=MetricsData, NumberDataPoint=NumberDataPoint, ResourceMetrics=ResourceMetrics,
            ScopeMetrics=ScopeMetrics, Sum=Sum, _Histogram=_Histogram, _ObservableCounter=_ObservableCounter,
            _ObservableGauge=_ObservableGauge, _ObservableUpDownCounter=_ObservableUpDownCounter,
            number_point=_constructor(NumberDataPoint, ("attributes", "start_time_unix_nano", "time_unix_nano",
                                                        "value", "exemplars")),
            metric=_constructor(Metric, ("name", "description", "unit", "data")),
            gauge=_constructor(Gauge, ("data_points",)),
            sum=_constructor(Sum, ("data_points", "aggregation_temporality", "is_monotonic")))
    return _sdk_types


def _constructor(cls: type, fields: tuple[str, ...]) -> Any:
    """``cls(*values)`` for one of the SDK's frozen data classes, about twice as fast: the instance's
    ``__dict__`` is set at once instead of one ``object.__setattr__`` per field (the generated
    ``__init__``). The class itself if its instances are not that (other fields, slots, a check
    after init), so a changed SDK costs speed, never correctness."""
    import dataclasses

    if (not dataclasses.is_dataclass(cls) or tuple(f.name for f in dataclasses.fields(cls)) != fields
            or hasattr(cls, "__post_init__") or "__slots__" in vars(cls)):
        return cls
    new, set_dict = object.__new__, object.__setattr__

    def make(*values: Any) -> Any:
        instance = new(cls)
        set_dict(instance, "__dict__", dict(zip(fields, values)))
        return instance

    return make


def _readers_of(consumer: Any) -> list[Any]:
    """The metric readers of one provider: its consumer keeps one storage per reader."""
    return list(getattr(consumer, "_reader_storages", None) or ())


_seams_lock = threading.Lock()
_seams: "weakref.WeakKeyDictionary[Any, _Seam | None]" = weakref.WeakKeyDictionary()


def install(meter_provider: Any) -> _Seam | None:
    """Put the seam on an SDK ``MeterProvider`` (once); None for any other provider."""
    with _seams_lock:
        if meter_provider in _seams:
            return _seams[meter_provider]
        consumer = getattr(meter_provider, "_measurement_consumer", None)
        readers_lock = getattr(meter_provider, "_all_metric_readers_lock", None)
        if (consumer is None or readers_lock is None or not callable(getattr(consumer, "collect", None))
                or not isinstance(getattr(consumer, "_reader_storages", None), dict)):
            seam = None
        else:
            seam = _Seam(meter_provider, consumer)
            with readers_lock:
                # add_metric_reader hands new readers consumer.collect: the instance attribute wins.
                consumer.collect = seam.collect
                # This provider's readers only: the SDK's _all_metric_readers is shared by every
                # provider of the process (it refuses a reader registered twice).
                for reader in _readers_of(consumer):
                    reader._set_collect_callback(seam.collect)
        _seams[meter_provider] = seam
        return seam


_histograms_lock = threading.Lock()
_histograms: "weakref.WeakKeyDictionary[Any, dict[tuple, AggregatedHistogram]]" = weakref.WeakKeyDictionary()


def histogram(meter_provider: Any, scope: str, name: str, *, unit: str, description: str,
              boundaries: Sequence[float], version: str | None = None) -> AggregatedHistogram:
    """The one aggregated histogram ``name`` of ``scope`` on ``meter_provider`` (made on first use)."""
    with _histograms_lock:
        by_key = _histograms.setdefault(meter_provider, {})
        key = (scope, version, name)
        found = by_key.get(key)
        if found is None:
            found = by_key[key] = AggregatedHistogram(meter_provider, scope, version, name, unit, description,
                                                      boundaries)
        return found
