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

CASES = {"stock": "stock", "ours": "ours", "ours, span only": "span"}


def instructions(case: str, calls: int) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(PYTHONPATH=REPO, OTEL_MONITORING_SYSTEM_METRICS="false")
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                          "-c", PROGRAM, case, str(calls)], env=env, capture_output=True, text=True, timeout=1800)
    found = re.search(r"Collected : (\d+)", out.stderr)
    if not found:
        raise SystemExit(f"valgrind gave no count for {case}:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls in the difference (default 2000)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("needs valgrind (apt-get install valgrind)")
    results = {}
    for label, case in CASES.items():
        low, high = instructions(case, 1000), instructions(case, 1000 + args.calls)
        results[label] = (high - low) / args.calls
    print("| case | instructions per call | x stock |\n| --- | --- | --- |")
    for label, value in results.items():
        print(f"| {label} | {value / 1000:.1f}k | {value / results['stock']:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
