"""Instructions per sampled span on the application's thread, counted by valgrind (deterministic).

    ~/.cache/otel-monitoring/venv-py3.11/bin/python bench/bench_span_instructions.py

On a shared machine CPU times move by 2x from run to run; instruction counts do not. Each case
runs in a fresh interpreter under ``valgrind --tool=callgrind`` twice, with 1,000 and 3,000 calls;
the difference over 2,000 calls is the per-call count (start-up and import cancel out). The batch
processors export to a null exporter, so the export thread adds almost nothing.

- stock: the SDK's TracerProvider + BatchSpanProcessor, ``start_as_current_span`` with two attributes
  (the e2e benchmark's stock producer);
- ours: ``configure()`` (its processors: GenAI marker, cost) + ``@traced`` (span, RED metrics);
- ours, span only: the wrapper's span start and ``end()`` without the wrapper (the SDK's share).

``--export`` counts the export side instead, per span: the span exporter each pipeline's batch
processor calls, exporting batches of 512 spans (made by that pipeline's producer above) over gRPC to
a receiver in another process, which is not counted. Each run makes the same 3,584 spans and exports
2 or 6 batches of them; the difference over 2,048 spans is the per-span count (gRPC's own threads
included, the receiver not).

- stock: the SDK's ``OTLPSpanExporter`` (its encoder, protobuf's serializer);
- ours: the exporter ``configure()`` builds (our encoder scrubbing as it writes, the delivery report,
  the SDK's gRPC exporter sending the bytes as they are).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PROGRAM = r"""
import os, sys
case, calls = sys.argv[1], int(sys.argv[2])
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
class Null(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS
attributes = {"otel_monitoring.component": "bench", "otel_monitoring.operation": "call"}
if case == "stock":
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(BatchSpanProcessor(Null()))
    tracer = provider.get_tracer("bench")
    def call(x):
        with tracer.start_as_current_span("bench.call", attributes=attributes):
            return x + 1
else:
    import otel_monitoring
    m = otel_monitoring.configure(service_name="bench", traces_exporter="none", metrics_exporter="none",
                                  logs_exporter="none")
    m.tracer_provider.add_span_processor(BatchSpanProcessor(Null()))
    if case == "ours":
        @otel_monitoring.traced("bench", "call")
        def call(x):
            return x + 1
    else:
        from opentelemetry.trace import SpanKind
        from otel_monitoring.instrumentation.span_start import starter
        start = starter(m.tracer_provider.get_tracer("bench"), attributes)
        def call(x):
            start("bench.call", None, SpanKind.INTERNAL).end()
for i in range(calls):
    call(i)
os._exit(0)  # no shutdown: only the calls differ between the two runs
"""

EXPORT_PROGRAM = r"""
import os, sys
case, batches = sys.argv[1], int(sys.argv[2])
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
made = InMemorySpanExporter()
attributes = {"otel_monitoring.component": "bench", "otel_monitoring.operation": "call"}
if case == "stock":
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    provider = TracerProvider(resource=Resource.create({"service.name": "bench"}))
    provider.add_span_processor(SimpleSpanProcessor(made))
    tracer = provider.get_tracer("bench")
    def call(x):
        with tracer.start_as_current_span("bench.call", attributes=attributes):
            return x + 1
    exporter = OTLPSpanExporter(insecure=True)
else:
    import otel_monitoring
    from otel_monitoring.config import load_settings
    from otel_monitoring.exporters import build_exporters
    m = otel_monitoring.configure(service_name="bench", traces_exporter="none")
    m.tracer_provider.add_span_processor(SimpleSpanProcessor(made))
    @otel_monitoring.traced("bench", "call")
    def call(x):
        return x + 1
    [exporter] = build_exporters(load_settings({"service_name": "bench"})).spans  # what configure() builds
for i in range(512 * 7):
    call(i)
spans = list(made.get_finished_spans())
made.clear()
assert exporter.export(spans[:512]).name == "SUCCESS"  # connected
for b in range(1, batches + 1):
    assert exporter.export(spans[512 * b:512 * (b + 1)]).name == "SUCCESS"
os._exit(0)
"""

_SINK = r"""
import sys
from concurrent import futures
import grpc
server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
handler = grpc.method_handlers_generic_handler("opentelemetry.proto.collector.trace.v1.TraceService", {
    "Export": grpc.unary_unary_rpc_method_handler(lambda request, context: b"", request_deserializer=None,
                                                  response_serializer=None)})
server.add_generic_rpc_handlers((handler,))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
sys.stdin.read()
"""

CASES = {"stock": "stock", "ours": "ours", "ours, span only": "span"}
EXPORT_CASES = {"stock: the SDK's OTLP gRPC span exporter": "stock",
                "ours: the OTLP gRPC span exporter configure() builds": "ours"}


def instructions(case: str, calls: int, program: str = PROGRAM, **environ: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(PYTHONPATH=REPO, OTEL_MONITORING_SYSTEM_METRICS="false", **environ)
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                          "-c", program, case, str(calls)], env=env, capture_output=True, text=True, timeout=1800)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if not found:
        raise SystemExit(f"valgrind gave no count for {case}:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls in the difference (default 2000)")
    parser.add_argument("--export", action="store_true", help="count the export side instead (see above)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (apt-get install valgrind)")
    if args.export:
        return export_side()
    results = {}
    for label, case in CASES.items():
        low, high = instructions(case, 1000), instructions(case, 1000 + args.calls)
        results[label] = (high - low) / args.calls
    print("| case | instructions per call | x stock |\n| --- | --- | --- |")
    for label, value in results.items():
        print(f"| {label} | {value / 1000:.1f}k | {value / results['stock']:.2f} |")
    return 0


def export_side() -> int:
    sink = subprocess.Popen([sys.executable, "-c", _SINK], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(sink.stdout.readline())  # type: ignore[union-attr]
        environ = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
                   "OTEL_METRICS_EXPORTER": "none", "OTEL_LOGS_EXPORTER": "none"}
        results = {}
        for label, case in EXPORT_CASES.items():
            low = instructions(case, 2, EXPORT_PROGRAM, **environ)
            high = instructions(case, 6, EXPORT_PROGRAM, **environ)
            results[label] = (high - low) / (4 * 512)
    finally:
        sink.stdin.close()  # type: ignore[union-attr]
        sink.wait(10)
    stock = results[next(iter(EXPORT_CASES))]
    print("| export side, per span | instructions | x stock |\n| --- | --- | --- |")
    for label, value in results.items():
        print(f"| {label} | {value / 1000:.1f}k | {value / stock:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
