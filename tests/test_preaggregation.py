"""Histograms aggregated in the process reach every reader as the SDK's own histogram would."""

from __future__ import annotations

import threading

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics import Histogram as _Histogram
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF

from otel_monitoring import preaggregation

BOUNDS = (0.01, 0.1, 1.0)
VALUES = [0.005, 0.01, 0.02, 0.1, 0.5, 1.0, 3.0, 0.07]


def _collect(reader):
    """One collection: {metric name: {attributes: (scope name, metric, point)}}."""
    data = reader.get_metrics_data()
    found = {}
    for resource_metrics in (data.resource_metrics if data else []):
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point in metric.data.data_points:
                    found.setdefault(metric.name, {})[tuple(sorted(point.attributes.items()))] = (
                        scope_metrics.scope.name, metric, point)
    return found


def _points(reader, name):
    return _collect(reader).get(name, {})


def _shape(point):
    return (point.count, round(point.sum, 9), list(point.bucket_counts), list(point.explicit_bounds),
            point.min, point.max)


def test_points_equal_the_sdk_histogram_for_cumulative_and_delta_readers():
    cumulative = InMemoryMetricReader()
    delta = InMemoryMetricReader(preferred_temporality={_Histogram: AggregationTemporality.DELTA})
    provider = MeterProvider(metric_readers=[cumulative, delta], shutdown_on_exit=False)
    sdk = provider.get_meter("ref").create_histogram("ref.duration", unit="s",
                                                     explicit_bucket_boundaries_advisory=list(BOUNDS))
    ours = preaggregation.histogram(provider, "ours", "ours.duration", unit="s", description="d",
                                    boundaries=BOUNDS)
    series = {"a": ours.series({"k": "a"}), "b": ours.series({"k": "b"})}
    rounds = [VALUES, [], [0.3, 0.0001]]
    for values in rounds:
        for i, value in enumerate(values):
            key = "ab"[i % 2]
            series[key].record(value)
            sdk.record(value, {"k": key})
        for reader in (cumulative, delta):
            collected = _collect(reader)  # one collection for both
            mine, theirs = collected.get("ours.duration", {}), collected.get("ref.duration", {})
            assert mine.keys() == theirs.keys()
            for key in theirs:
                scope, metric, point = mine[key]
                assert scope == "ours" and metric.unit == "s"
                assert metric.data.aggregation_temporality == theirs[key][1].data.aggregation_temporality
                assert _shape(point) == _shape(theirs[key][2])
    provider.shutdown()


def test_delta_reader_sees_each_interval_once_and_cumulative_sees_all():
    cumulative = InMemoryMetricReader()
    delta = InMemoryMetricReader(preferred_temporality={_Histogram: AggregationTemporality.DELTA})
    provider = MeterProvider(metric_readers=[cumulative, delta], shutdown_on_exit=False)
    series = preaggregation.histogram(provider, "s", "h", unit="s", description="", boundaries=BOUNDS).series({})
    series.record(0.5)
    series.record(2.0)
    assert _shape(_points(delta, "h")[()][2]) == (2, 2.5, [0, 0, 1, 1], list(BOUNDS), 0.5, 2.0)
    series.record(0.05)
    # the cumulative reader collects only now: it still gets the first window, closed by the delta reader
    assert _shape(_points(cumulative, "h")[()][2]) == (3, 2.55, [0, 1, 1, 1], list(BOUNDS), 0.05, 2.0)
    assert _shape(_points(delta, "h")[()][2]) == (1, 0.05, [0, 1, 0, 0], list(BOUNDS), 0.05, 0.05)
    assert _points(delta, "h") == {}  # nothing new: no point, as the SDK
    provider.shutdown()


def test_exemplars_come_from_sampled_spans_only():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    series = preaggregation.histogram(provider, "s", "h", unit="s", description="", boundaries=BOUNDS).series({})
    sampled = TracerProvider(shutdown_on_exit=False).get_tracer("t").start_span("sampled")
    unsampled = TracerProvider(sampler=ALWAYS_OFF, shutdown_on_exit=False).get_tracer("t").start_span("not")
    series.record(0.05, sampled)
    series.record(0.5, unsampled)
    (_, _, point), = _points(reader, "h").values()
    assert [(e.value, e.trace_id, e.span_id) for e in point.exemplars] == [
        (0.05, sampled.get_span_context().trace_id, sampled.get_span_context().span_id)]
    (_, _, point), = _points(reader, "h").values()
    assert point.count == 2 and point.exemplars == []  # handed out once, as the SDK's reservoir
    provider.shutdown()


def test_a_reader_added_later_gets_the_points_too():
    first = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[first], shutdown_on_exit=False)
    series = preaggregation.histogram(provider, "s", "h", unit="s", description="", boundaries=BOUNDS).series({})
    later = InMemoryMetricReader()
    provider.add_metric_reader(later)
    series.record(0.5)
    assert _points(later, "h")[()][2].count == 1
    assert _points(first, "h")[()][2].count == 1
    provider.shutdown()


def test_concurrent_records_are_all_counted():
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    series = preaggregation.histogram(provider, "s", "h", unit="s", description="", boundaries=BOUNDS).series({})
    threads, per_thread = 4, 20000
    collected = []

    def work():
        for i in range(per_thread):
            series.record(0.05 if i % 2 else 0.5)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    while any(w.is_alive() for w in workers):  # collections racing the records lose nothing
        collected.append(_points(reader, "h"))
    for worker in workers:
        worker.join()
    point = _points(reader, "h")[()][2]
    assert point.count == threads * per_thread
    assert list(point.bucket_counts) == [0, threads * per_thread // 2, threads * per_thread // 2, 0]
    provider.shutdown()


def test_a_provider_without_the_seam_gets_plain_records():
    from opentelemetry.metrics import NoOpMeterProvider

    provider = NoOpMeterProvider()
    series = preaggregation.histogram(provider, "s", "h", unit="s", description="", boundaries=BOUNDS).series({})
    series.record(0.5)  # through the API: nothing to read back, and nothing raised
    assert preaggregation.install(provider) is None


def test_another_providers_readers_keep_their_own_data():
    # The SDK keeps every provider's readers in one class-wide set; the seam must take its own only.
    theirs_reader, ours_reader = InMemoryMetricReader(), InMemoryMetricReader()
    theirs = MeterProvider(metric_readers=[theirs_reader], shutdown_on_exit=False)
    ours = MeterProvider(metric_readers=[ours_reader], shutdown_on_exit=False)
    theirs.get_meter("app").create_counter("app.requests").add(3)
    preaggregation.histogram(ours, "ours", "ours.duration", unit="s", description="d",
                             boundaries=BOUNDS).series({"k": "a"}).record(0.5)
    assert list(_collect(theirs_reader)) == ["app.requests"]
    assert list(_collect(ours_reader)) == ["ours.duration"]


def test_span_ids_read_the_span_context_as_its_properties_do():
    """The exemplar ids come from the SpanContext tuple's fields by position: they must be the
    values its properties give, for every kind of context (an API change would show here)."""
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, TraceState

    from otel_monitoring.preaggregation import span_ids

    contexts = [SpanContext(0xA1, 0xB1, False, TraceFlags(0x01)),
                SpanContext(0xA2, 0xB2, True, TraceFlags(0x00), TraceState([("k", "v")])),
                SpanContext(0xA3, 0xB3, False, TraceFlags(0x03)),
                SpanContext(0, 0, False, TraceFlags(0x01))]  # invalid
    for context in contexts:
        expected = (context.trace_id, context.span_id, context.trace_flags.sampled, context.is_valid)
        assert span_ids(NonRecordingSpan(context)) == expected
    assert [span_ids(NonRecordingSpan(c))[2:] for c in contexts] == [(True, True), (False, True), (True, True),
                                                                       (True, False)]
