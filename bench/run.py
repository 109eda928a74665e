"""The performance targets side by side: one command, interleaved rounds, medians, spread, ratios.

    ~/.cache/otel-monitoring/venv-py3.11/bin/python bench/run.py [--rounds 9] [--only disabled,call,...]
        [--e2e --spans 20000] [--outage-minutes 10 --outage-rate 1000]

Each group runs in its own process (the disabled path needs OTEL_SDK_DISABLED=true from the start).
Within a group every round runs every case once, in a rotating order, so load on the shared
machine falls on all cases alike; a ratio is computed per round and the table shows its median and
spread (min-max over rounds). Times are CPU time of the measuring thread (``time.thread_time``),
except the export group, which counts the whole process (gRPC works on its own threads; the
receiving end runs in another process and is not counted).

Groups:
- disabled: ``@traced`` with OTEL_SDK_DISABLED=true and no providers (the user's path) vs a
  wrapt no-op wrapper; target <= 2x.
- call: ``@traced`` vs hand-written OpenTelemetry doing the same work (span, duration histogram,
  call counter), sampled (target <= 0.5x) and not sampled (target <= 0.3x); suppressed vs wrapt
  no-op (<= 2x).
- histogram: one RED duration measurement: the SDK's ``histogram.record`` (4 attributes, in a
  sampled span's context, so with an exemplar offer) vs the pre-aggregated series' ``record``.
- export: per span, the OTLP/JSON file exporter (ours, and the library's for reference) vs the
  SDK's OTLP gRPC exporter encoding and sending the same batches to a receiver in another process;
  target: ours <= 1.5x gRPC. Also the gRPC exporter with our wire encoder (what configure() uses).
- meters: CPU of one collection of the default system meters + host health, fresh reads
  (bench/bench_system_meters.py's "hot" case), scaled to the reference machine by an interleaved
  ``histogram.record`` (9 µs there, GUIDE.md); target <= 2 ms.
- e2e (``--e2e``, needs the stack's collector: eval "$(scripts/build-stack.sh --print-env)"):
  spans/s and CPU per span from a producer thread through the SDK pipeline to a real collector,
  the stock SDK pipeline (hand-written spans, BatchSpanProcessor, OTLP gRPC) vs ours
  (``configure()`` + ``@traced``), and the spans the collector received; ``--rounds`` producer runs
  of each, alternating which goes first. A free-running producer outruns a pipeline whose export
  cannot keep up, and its batch queue then drops spans: so each round also searches, with a paced
  producer, the highest rate at which the collector receives every span (the zero-drop rate),
  which is what the spans/s target compares.
- outage (``--outage-minutes N``): RSS growth of a process sending ``--outage-rate`` spans/s through
  ``configure()`` to an endpoint where nothing listens (a collector outage), sampled every 10 s.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REFERENCE_RECORD_S = 9e-6  # histogram.record with 2 attributes on the project's reference machines
REPO = os.path.dirname(HERE)


# --- measuring ---


def _cpu_per_call(function: Callable[[], Any], calls: int, clock: Callable[[], float] = time.thread_time) -> float:
    began = clock()
    for _ in range(calls):
        function()
    return (clock() - began) / calls


def _interleave(cases: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Each case's sample per round, cases in a rotating order."""
    names = list(cases)
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            samples[name].append(cases[name]())
    return samples


# --- groups (each runs in a worker process) ---


def _work(x: int) -> int:
    return x + 1


def _wrapt_noop() -> Any:
    import wrapt

    return wrapt.FunctionWrapper(_work, lambda wrapped, instance, args, kwargs: wrapped(*args, **kwargs))


def group_disabled(rounds: int) -> dict[str, list[float]]:
    assert os.environ.get("OTEL_SDK_DISABLED") == "true"
    import otel_monitoring

    otel_monitoring.configure()  # as a user would: it installs nothing when disabled
    noop, traced = _wrapt_noop(), otel_monitoring.traced("bench", "call")(_work)
    calls = 50_000
    return _interleave({
        "wrapt no-op": lambda: _cpu_per_call(lambda: noop(1), calls),
        "@traced, OTEL_SDK_DISABLED=true": lambda: _cpu_per_call(lambda: traced(1), calls),
    }, rounds)


class _NullSpanExporter:
    def export(self, spans: Any) -> Any:
        from opentelemetry.sdk.trace.export import SpanExportResult

        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return True


def _providers(sampler: Any) -> tuple[Any, Any]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    tracer_provider = TracerProvider(sampler=sampler, shutdown_on_exit=False)
    tracer_provider.add_span_processor(BatchSpanProcessor(_NullSpanExporter(), max_queue_size=1 << 20))
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()], shutdown_on_exit=False)


METRIC_ATTRIBUTES = {"domain": "custom", "component": "bench", "operation": "call", "outcome": "success"}


def _hand_written(tracer_provider: Any, meter_provider: Any) -> Callable[[int], int]:
    tracer = tracer_provider.get_tracer("bench.hand")
    meter = meter_provider.get_meter("bench.hand")
    histogram = meter.create_histogram("bench.duration", unit="s")
    counter = meter.create_counter("bench.calls", unit="{call}")
    attributes = {"otel_monitoring.component": "bench", "otel_monitoring.operation": "call"}

    def call(x: int) -> int:
        with tracer.start_as_current_span("bench.call", attributes=attributes):
            start = time.perf_counter()
            result = _work(x)
            histogram.record(time.perf_counter() - start, METRIC_ATTRIBUTES)
            counter.add(1, METRIC_ATTRIBUTES)
        return result

    return call


def group_call(rounds: int) -> dict[str, list[float]]:
    from opentelemetry.instrumentation.utils import suppress_instrumentation
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased

    from otel_monitoring.instrumentation.core import Operation, Telemetry, wrap

    operation = Operation(domain="custom", component="bench", operation="call")
    sampled, unsampled = _providers(ALWAYS_ON), _providers(ParentBased(ALWAYS_OFF))
    ours_sampled = wrap(_work, operation, Telemetry("bench.ours", *sampled))
    ours_unsampled = wrap(_work, operation, Telemetry("bench.ours", *unsampled))
    hand_sampled, hand_unsampled = _hand_written(*sampled), _hand_written(*unsampled)
    noop = _wrapt_noop()
    calls = 5_000

    def suppressed() -> float:
        with suppress_instrumentation():
            return _cpu_per_call(lambda: ours_sampled(1), calls * 4)

    samples = _interleave({
        "hand-written, sampled": lambda: _cpu_per_call(lambda: hand_sampled(1), calls),
        "@traced, sampled": lambda: _cpu_per_call(lambda: ours_sampled(1), calls),
        "hand-written, not sampled": lambda: _cpu_per_call(lambda: hand_unsampled(1), calls),
        "@traced, not sampled": lambda: _cpu_per_call(lambda: ours_unsampled(1), calls),
        "wrapt no-op": lambda: _cpu_per_call(lambda: noop(1), calls * 4),
        "@traced, suppressed": suppressed,
    }, rounds)
    for tracer_provider, meter_provider in (sampled, unsampled):
        tracer_provider.shutdown()
        meter_provider.shutdown()
    return samples


def group_histogram(rounds: int) -> dict[str, list[float]]:
    from opentelemetry import trace
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    from otel_monitoring import preaggregation
    from otel_monitoring import names

    tracer_provider, meter_provider = _providers(ALWAYS_ON)
    span = tracer_provider.get_tracer("bench").start_span("bench")
    context = trace.set_span_in_context(span)
    sdk = meter_provider.get_meter("bench").create_histogram(
        "bench.sdk", unit="s", explicit_bucket_boundaries_advisory=list(names.DURATION_BUCKETS))
    series = preaggregation.histogram(meter_provider, "bench", "bench.ours", unit="s", description="",
                                      boundaries=names.DURATION_BUCKETS).series(METRIC_ATTRIBUTES)
    calls = 20_000
    samples = _interleave({
        "SDK histogram.record": lambda: _cpu_per_call(lambda: sdk.record(0.012, METRIC_ATTRIBUTES, context), calls),
        "pre-aggregated record": lambda: _cpu_per_call(lambda: series.record(0.012, span), calls),
    }, rounds)
    tracer_provider.shutdown()
    meter_provider.shutdown()
    return samples


_SINK = r"""
import sys, time
from concurrent import futures
import grpc
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
def export(request, context):
    return b""
handler = grpc.method_handlers_generic_handler("opentelemetry.proto.collector.trace.v1.TraceService", {
    "Export": grpc.unary_unary_rpc_method_handler(export, request_deserializer=None, response_serializer=None)})
server.add_generic_rpc_handlers((handler,))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()
"""


def _sample_spans(count: int) -> list[Any]:
    """Spans as our wrapper makes them (name, kind, component/operation and two more attributes)."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("otel_monitoring.trading", "0.1")
    with tracer.start_as_current_span("bench.root"):
        for _ in range(count - 1):
            with tracer.start_as_current_span("exchange.fetch_ticker", attributes={
                    "otel_monitoring.component": "exchange", "otel_monitoring.operation": "fetch_ticker",
                    "trading.symbol": "BTC/USDT", "trading.exchange": "binance"}):
                pass
    return list(memory.get_finished_spans())


def group_export(rounds: int) -> dict[str, list[float]]:
    from opentelemetry.exporter.otlp.json.file.trace_exporter import FileSpanExporter
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    from otel_monitoring.exporters.file import OtlpFileSpanExporter

    batch = _sample_spans(512)  # the BatchSpanProcessor's default export batch
    sink = subprocess.Popen([sys.executable, "-c", _SINK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(sink.stdout.readline())  # type: ignore[union-attr]
        grpc_exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{port}", insecure=True)
        directory = tempfile.mkdtemp(prefix="bench-export-")
        ours = OtlpFileSpanExporter(directory, max_bytes=64 * 1024 * 1024, max_backups=1)
        library = FileSpanExporter(os.path.join(directory, "library.jsonl"))
        grpc_exporter.export(batch)  # connect once before measuring
        batches = 8

        def per_span(exporter: Any) -> Callable[[], float]:
            return lambda: _cpu_per_call(lambda: exporter.export(batch), batches, time.process_time) / len(batch)

        from otel_monitoring.exporters.otlp_proto import grpc_span_exporter_class

        fast_grpc = grpc_span_exporter_class()(endpoint=f"127.0.0.1:{port}", insecure=True)
        fast_grpc.export(batch)
        samples = _interleave({
            "OTLP gRPC encode + send": per_span(grpc_exporter),
            "OTLP gRPC encode + send (our encoder)": per_span(fast_grpc),
            "file exporter (ours)": per_span(ours),
            "file exporter (library encoder)": per_span(library),
        }, rounds)
        grpc_exporter.shutdown()
        fast_grpc.shutdown()
        ours.shutdown()
        library.shutdown()
        for name in os.listdir(directory):
            os.remove(os.path.join(directory, name))
        os.rmdir(directory)
        return samples
    finally:
        sink.stdin.close()  # type: ignore[union-attr]
        sink.wait(10)


def group_meters(rounds: int) -> dict[str, list[float]]:
    sys.path.insert(0, HERE)
    from bench_system_meters import Setup

    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    setup = Setup(())
    # The GUIDE's reference operation, to scale the absolute time to the reference machine.
    histogram = MeterProvider(metric_readers=[InMemoryMetricReader()], shutdown_on_exit=False).get_meter(
        "bench").create_histogram("bench.reference", unit="s")
    attributes = {"component": "bench", "operation": "record"}
    samples = _interleave({
        "system meters, one collection": lambda: statistics.median(setup.cpu_ms(4, 0.0)) / 1000,
        "reference histogram.record (2 attributes)": lambda: _cpu_per_call(
            lambda: histogram.record(0.001, attributes), 5000),
    }, rounds)
    setup.close()
    return samples


# --- end to end (a real collector) ---

_COLLECTOR_CONFIG = """
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 127.0.0.1:{grpc}
exporters:
  debug:
    verbosity: basic
    sampling_initial: 1
    sampling_thereafter: 1000
processors:
  batch: {{}}
service:
  telemetry:
    metrics:
      readers:
        - pull:
            exporter:
              prometheus:
                host: 127.0.0.1
                port: {metrics}
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [debug]
"""

_PRODUCER = r"""
import os, sys, time, json, resource
mode, spans, rate = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
if mode == "stock":
    from opentelemetry import trace
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    processor = BatchSpanProcessor(OTLPSpanExporter(insecure=True))
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")
    attributes = {"otel_monitoring.component": "bench", "otel_monitoring.operation": "call"}
    def call(x):
        with tracer.start_as_current_span("bench.call", attributes=attributes):
            return x + 1
    flush = provider.force_flush
else:
    import otel_monitoring
    monitoring = otel_monitoring.configure(service_name="bench")
    @otel_monitoring.traced("bench", "call")
    def call(x):
        return x + 1
    flush = monitoring.force_flush if hasattr(monitoring, "force_flush") else (lambda: None)
began, cpu, app = time.perf_counter(), time.process_time(), time.thread_time()
if rate:
    # Paced: every 50 spans, sleep until the schedule catches up (the export thread runs meanwhile).
    for i in range(spans):
        call(i)
        if i % 50 == 49:
            ahead = began + (i + 1) / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
else:
    for i in range(spans):
        call(i)
produced, app = time.perf_counter() - began, time.thread_time() - app
flush()
elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu
print(json.dumps({"produce_s": produced, "elapsed_s": elapsed, "cpu_s": cpu, "app_cpu_s": app,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _accepted_spans(metrics_port: int) -> float:
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith("otelcol_receiver_accepted_spans") and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_e2e(spans: int, rounds: int) -> dict[str, list[float]]:
    collector = os.environ.get("OTEL_MONITORING_OTELCOL")
    if not collector:
        raise SystemExit('--e2e needs the collector: eval "$(scripts/build-stack.sh --print-env)" first')
    grpc_port, metrics_port = _free_port(), _free_port()
    directory = tempfile.mkdtemp(prefix="bench-e2e-")
    config = os.path.join(directory, "collector.yaml")
    with open(config, "w") as handle:
        handle.write(_COLLECTOR_CONFIG.format(grpc=grpc_port, metrics=metrics_port))
    log = open(os.path.join(directory, "collector.log"), "w")
    process = subprocess.Popen([collector, "--config", config], stdout=log, stderr=subprocess.STDOUT)
    samples: dict[str, list[float]] = {}
    try:
        for _ in range(300):
            try:
                _accepted_spans(metrics_port)
                break
            except OSError:
                if process.poll() is not None:
                    raise SystemExit(f"the collector exited: see {log.name}") from None
                time.sleep(0.2)
        env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{grpc_port}",
               "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none",
               "OTEL_MONITORING_SYSTEM_METRICS": "false", "PYTHONPATH": REPO}

        def trial(mode: str, rate: float) -> tuple[dict[str, float], float]:
            before = _accepted_spans(metrics_port)
            out = subprocess.run([sys.executable, "-c", _PRODUCER, mode, str(spans), str(rate)], env=env,
                                 capture_output=True, text=True, timeout=600)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            received, waited = _accepted_spans(metrics_port) - before, 0.0
            while received < spans and waited < 6.0:  # the collector's own metrics lag a little
                time.sleep(0.5)
                waited += 0.5
                received = _accepted_spans(metrics_port) - before
            return result, received

        for round_ in range(rounds):
            for mode in (("stock", "ours") if round_ % 2 == 0 else ("ours", "stock")):
                result, received = trial(mode, 0.0)
                produced = spans / result["produce_s"]
                samples.setdefault(f"{mode}: spans/s produced", []).append(produced)
                samples.setdefault(f"{mode}: CPU us per span", []).append(result["cpu_s"] / spans * 1e6)
                samples.setdefault(f"{mode}: app thread CPU us per span", []).append(result["app_cpu_s"] / spans * 1e6)
                samples.setdefault(f"{mode}: received / sent", []).append(received / spans)
                # Zero-drop rate: the free run's rate if nothing was lost, else a bisection between
                # the best paced rate that lost nothing and the lowest that lost spans.
                best, worst, asked = (produced, produced, 0.0) if received >= spans else (0.0, produced, produced * 0.7)
                for _ in range(4 if received < spans else 0):
                    result, received = trial(mode, asked)
                    achieved = spans / result["produce_s"]
                    if received >= spans:
                        best = max(best, achieved)
                    else:
                        worst = min(worst, asked)
                    asked = (best + worst) / 2 if best else worst * 0.6
                samples.setdefault(f"{mode}: zero-drop spans/s", []).append(best)
        return samples
    finally:
        process.terminate()
        process.wait(10)


_OUTAGE = r"""
import json, os, sys, time, resource, threading
import otel_monitoring
minutes, rate = float(sys.argv[1]), int(sys.argv[2])
otel_monitoring.configure(service_name="bench-outage")
@otel_monitoring.traced("bench", "call")
def call(x):
    return x + 1
def rss_mb():
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
start, samples, sent = time.monotonic(), [], 0
next_sample = start
while time.monotonic() - start < minutes * 60:
    tick = time.monotonic()
    for _ in range(rate // 10):
        call(sent); sent += 1
    if tick >= next_sample:
        samples.append((round(tick - start, 1), round(rss_mb(), 1)))
        next_sample += 10
    time.sleep(max(0.0, 0.1 - (time.monotonic() - tick)))
print(json.dumps({"sent": sent, "rss": samples}))
os._exit(0)
"""


def run_outage(minutes: float, rate: int) -> dict[str, Any]:
    env = {**os.environ, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{_free_port()}",
           "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "PYTHONPATH": REPO}
    out = subprocess.run([sys.executable, "-c", _OUTAGE, str(minutes), str(rate)], env=env,
                         capture_output=True, text=True, timeout=minutes * 60 + 300)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- report ---

GROUPS = {"disabled": group_disabled, "call": group_call, "histogram": group_histogram,
          "export": group_export, "meters": group_meters}

RATIOS = [  # (label, numerator, denominator, target)
    ("disabled @traced / wrapt no-op", "@traced, OTEL_SDK_DISABLED=true", "wrapt no-op", 2.0, "disabled"),
    ("sampled @traced / hand-written", "@traced, sampled", "hand-written, sampled", 0.5, "call"),
    ("not sampled @traced / hand-written", "@traced, not sampled", "hand-written, not sampled", 0.3, "call"),
    ("suppressed @traced / wrapt no-op", "@traced, suppressed", "wrapt no-op", 2.0, "call"),
    ("pre-aggregated / SDK histogram.record", "pre-aggregated record", "SDK histogram.record", None, "histogram"),
    ("file exporter (ours) / OTLP gRPC", "file exporter (ours)", "OTLP gRPC encode + send", 1.5, "export"),
    ("file exporter (library) / OTLP gRPC", "file exporter (library encoder)", "OTLP gRPC encode + send", None,
     "export"),
    ("OTLP gRPC, our encoder / the SDK's", "OTLP gRPC encode + send (our encoder)", "OTLP gRPC encode + send", None,
     "export"),
]


def _spread(values: list[float]) -> str:
    return f"{min(values):.3g}-{max(values):.3g}"


def _unit(name: str, value: float) -> str:
    if "spans/s" in name or "/ sent" in name or "us per" in name:
        return f"{value:.4g}"
    return f"{value * 1e6:.3g} µs" if value < 1e-3 else f"{value * 1e3:.3g} ms"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--only", default=",".join(GROUPS), help="comma-separated groups: " + ", ".join(GROUPS))
    parser.add_argument("--e2e", action="store_true", help="also the end-to-end run to a real collector")
    parser.add_argument("--spans", type=int, default=20_000, help="spans per end-to-end run")
    parser.add_argument("--outage-minutes", type=float, default=0.0, help="also the collector-outage memory run")
    parser.add_argument("--outage-rate", type=int, default=1000, help="spans/s during the outage run")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.worker:
        print(json.dumps(GROUPS[args.worker](args.rounds)))
        return 0

    samples: dict[str, dict[str, list[float]]] = {}
    for group in [g for g in args.only.split(",") if g]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")]))}
        if group == "disabled":
            env["OTEL_SDK_DISABLED"] = "true"
        else:
            env.pop("OTEL_SDK_DISABLED", None)
        out = subprocess.run([sys.executable, __file__, "--worker", group, "--rounds", str(args.rounds)],
                             env=env, capture_output=True, text=True)
        if out.returncode:
            print(f"group {group} failed:\n{out.stderr}", file=sys.stderr)
            continue
        samples[group] = json.loads(out.stdout.strip().splitlines()[-1])
    if args.e2e:
        samples["e2e"] = run_e2e(args.spans, max(3, args.rounds))

    load = os.getloadavg()
    print(f"{datetime.date.today().isoformat()}, {platform.node()}: {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}; "
          f"{args.rounds} interleaved rounds\n")
    print("| group | case | median | spread (min-max) |\n| --- | --- | --- | --- |")
    for group, cases in samples.items():
        for name, values in cases.items():
            print(f"| {group} | {name} | {_unit(name, statistics.median(values))} | "
                  f"{_unit(name, min(values))} - {_unit(name, max(values))} |")
    print("\n| ratio | median | spread (min-max) | target |\n| --- | --- | --- | --- |")
    for label, numerator, denominator, target, group in RATIOS:
        cases = samples.get(group)
        if not cases:
            continue
        ratios = [a / b for a, b in zip(cases[numerator], cases[denominator])]
        median = statistics.median(ratios)
        verdict = "" if target is None else (f"<= {target:g}x " + ("met" if median <= target else "MISSED"))
        print(f"| {label} | {median:.2f}x | {_spread(ratios)} | {verdict} |")
    if "meters" in samples:
        # In units of the reference record (9 us on the reference machines, GUIDE.md section 6).
        cases = samples["meters"]
        scaled = [c / r * REFERENCE_RECORD_S for c, r in zip(cases["system meters, one collection"],
                                                               cases["reference histogram.record (2 attributes)"])]
        median = statistics.median(scaled)
        print(f"| system meters, one collection, scaled to the reference machine | {median * 1e3:.2f} ms | "
              f"{min(scaled) * 1e3:.2f}-{max(scaled) * 1e3:.2f} ms | <= 2 ms {'met' if median <= 2e-3 else 'MISSED'} |")
    if "e2e" in samples:
        cases = samples["e2e"]
        for label, key, target in (("e2e zero-drop spans/s, ours / stock", "zero-drop spans/s", 1.5),
                                   ("e2e spans/s produced (free-running), ours / stock", "spans/s produced", None),
                                   ("e2e CPU per span, ours / stock", "CPU us per span", 0.7)):
            ratios = [a / b if b else float("inf") for a, b in zip(cases[f"ours: {key}"], cases[f"stock: {key}"])]
            median = statistics.median(ratios)
            if target is None:
                print(f"| {label} | {median:.2f}x | {_spread(ratios)} |  |")
                continue
            good = median >= target if "spans/s" in key else median <= target
            print(f"| {label} | {median:.2f}x | {_spread(ratios)} | {'>=' if 'spans/s' in key else '<='} "
                  f"{target:g}x {'met' if good else 'MISSED'} |")
    if args.outage_minutes:
        result = run_outage(args.outage_minutes, args.outage_rate)
        rss = [mb for _, mb in result["rss"]]
        print(f"\noutage {args.outage_minutes:g} min at {args.outage_rate} spans/s ({result['sent']} spans): RSS "
              f"first sample {rss[0]:.1f} MB, peak {max(rss):.1f} MB, last {rss[-1]:.1f} MB, growth "
              f"{max(rss) - rss[0]:+.1f} MB (target <= +30 MB)")
        print("RSS samples (s, MB): " + ", ".join(f"{t:g}:{mb:g}" for t, mb in result["rss"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
