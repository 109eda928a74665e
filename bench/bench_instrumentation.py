"""Per-call cost of the instrumentation wrapper, as ratios measured in one process.

    ~/.cache/otel-monitoring/venv-py3.11/bin/python bench/bench_instrumentation.py [--calls 20000] [--repeat 5]

Compares, on the same trivial function:
- bare: the function itself;
- wrapt no-op: a wrapt FunctionWrapper that only calls through;
- hand-written: the OpenTelemetry code a careful user writes for the same telemetry
  (``start_as_current_span`` with the same two attributes + ``histogram.record`` + ``counter.add``);
- otel-monitoring: ``@traced`` (the one wrapper core every instrumentor uses);
each with a sampled pipeline (ALWAYS_ON, BatchSpanProcessor to a null exporter, one metric reader),
not sampled (parent-based ALWAYS_OFF root), and ours also suppressed (``suppress_instrumentation``)
and disabled (no SDK: the API's no-op providers, as with OTEL_SDK_DISABLED).

Targets (docs/performance.md): fully instrumented <= 0.5x hand-written, not sampled <= 0.3x
hand-written-not-sampled, suppressed or disabled <= 2x the wrapt no-op. Each number is the best
of ``--repeat`` runs of ``--calls`` calls (the machines are shared: the minimum is the least noisy).
"""

from __future__ import annotations

import argparse
import sys
import time
import timeit

import wrapt
from opentelemetry import trace
from opentelemetry.instrumentation.utils import suppress_instrumentation
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased

from otel_monitoring.instrumentation.core import Operation, Telemetry, wrap
from otel_monitoring import names

ATTRIBUTES = {names.SPAN_COMPONENT: "bench", names.SPAN_OPERATION: "call"}
METRIC_ATTRIBUTES = {"domain": "custom", "component": "bench", "operation": "call", "outcome": "success"}


class NullExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


def work(x: int) -> int:
    return x + 1


def providers(sampler):
    tracer_provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    tracer_provider.add_span_processor(BatchSpanProcessor(NullExporter(), max_queue_size=1 << 20))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()], shutdown_on_exit=False)
    return tracer_provider, meter_provider


def hand_written(tracer_provider, meter_provider):
    tracer = tracer_provider.get_tracer("bench.hand")
    meter = meter_provider.get_meter("bench.hand")
    histogram = meter.create_histogram("bench.duration", unit="s")
    counter = meter.create_counter("bench.calls", unit="{call}")

    def call(x: int) -> int:
        with tracer.start_as_current_span("bench.call", attributes=ATTRIBUTES):
            start = time.perf_counter()
            result = work(x)
            histogram.record(time.perf_counter() - start, METRIC_ATTRIBUTES)
            counter.add(1, METRIC_ATTRIBUTES)
        return result

    return call


def ours(tracer_provider, meter_provider):
    operation = Operation(domain="custom", component="bench", operation="call")
    return wrap(work, operation, Telemetry("bench.ours", tracer_provider, meter_provider))


def measure(function, calls: int, repeat: int) -> float:
    """Best seconds per call."""
    return min(timeit.repeat(lambda: function(1), number=calls, repeat=repeat)) / calls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)

    sampled = providers(ALWAYS_ON)
    unsampled = providers(ParentBased(ALWAYS_OFF))
    noop_tracer_provider = trace.NoOpTracerProvider()
    noop_meter_provider = NoOpMeterProvider()

    ours_sampled = ours(*sampled)
    cases = {
        "bare": work,
        "wrapt no-op": wrapt.FunctionWrapper(work, lambda wrapped, instance, a, kw: wrapped(*a, **kw)),
        "hand-written, sampled": hand_written(*sampled),
        "otel-monitoring, sampled": ours_sampled,
        "hand-written, not sampled": hand_written(*unsampled),
        "otel-monitoring, not sampled": ours(*unsampled),
        "otel-monitoring, disabled (no SDK)": ours(noop_tracer_provider, noop_meter_provider),
    }
    results = {name: measure(function, args.calls, args.repeat) for name, function in cases.items()}
    with suppress_instrumentation():
        results["otel-monitoring, suppressed"] = measure(ours_sampled, args.calls, args.repeat)

    print(f"Python {sys.version.split()[0]}, {args.calls} calls x {args.repeat} repeats, best run\n")
    print(f"{'case':<38} {'us/call':>9}")
    for name, seconds in results.items():
        print(f"{name:<38} {seconds * 1e6:>9.2f}")
    checks = [
        ("sampled vs hand-written", results["otel-monitoring, sampled"], results["hand-written, sampled"], 0.5),
        ("not sampled vs hand-written", results["otel-monitoring, not sampled"],
         results["hand-written, not sampled"], 0.3),
        ("suppressed vs wrapt no-op", results["otel-monitoring, suppressed"], results["wrapt no-op"], 2.0),
        ("disabled vs wrapt no-op", results["otel-monitoring, disabled (no SDK)"], results["wrapt no-op"], 2.0),
    ]
    print(f"\n{'ratio':<30} {'measured':>9} {'target':>8}")
    for label, mine, reference, target in checks:
        ratio = mine / reference
        print(f"{label:<30} {ratio:>8.2f}x {'<=' + format(target, 'g') + 'x':>8}  {'ok' if ratio <= target else 'MISSED'}")
    sampled[0].shutdown()
    unsampled[0].shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
