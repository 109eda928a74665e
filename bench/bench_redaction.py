"""Cost per span of the SDK's secret scrubbing (otel_monitoring/redaction.py, exporters/scrub.py).

    ~/.cache/otel-monitoring/venv-py3.11/bin/python bench/bench_redaction.py [--spans 5000] [--repeat 5]

The scrubbing runs in the exporter wrapper, on the batch processor's thread, not in the
application's call. Measured here on ended spans, in one process:
- clean: a typical HTTP client span (8 attributes: method, url.full without a query, server
  address and port, status code, two gen_ai token counts, a component name) with nothing to
  scrub: the common case, which must copy nothing;
- secret: the same span with a signed URL (``?apiKey=...&signature=...``), a ``db.password`` and
  a connection string with a password: every rule fires and the span is copied;
and, for scale, ``start_as_current_span`` with the same attributes and a BatchSpanProcessor to a
null exporter (the cost the application pays per span). Each number is the best of ``--repeat``
runs (the machines are shared: the minimum is the least noisy); ratios are what to compare.
"""

from __future__ import annotations

import argparse
import time

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from otel_monitoring.exporters.scrub import scrub_span
from otel_monitoring.redaction import Redactor

CLEAN = {
    "http.request.method": "GET", "url.full": "https://api.exchange.test/api/v3/ticker/price",
    "server.address": "api.exchange.test", "server.port": 443, "http.response.status_code": 200,
    "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 300, "otel_monitoring.component": "exchange",
}
SECRET = {
    **CLEAN,
    "url.full": "https://api.exchange.test/api/v3/order?symbol=BTCUSDT&timestamp=1&apiKey=abc&signature=0123abcd",
    "db.password": "hunter2", "db.connection_string": "Server=db;User Id=app;Password=hunter2;Database=x",
}


class NullExporter(SpanExporter):
    def export(self, spans):
        return SpanExportResult.SUCCESS


def ended_spans(attributes: dict, count: int) -> list:
    provider = TracerProvider(shutdown_on_exit=False)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("bench")
    for _ in range(count):
        with tracer.start_as_current_span("GET") as span:
            span.set_attributes(attributes)
    return list(memory.get_finished_spans())


def best_per_span(fn, spans: list, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn(spans)
        best = min(best, (time.perf_counter() - start) / len(spans))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    redactor = Redactor()
    clean, secret = ended_spans(CLEAN, args.spans), ended_spans(SECRET, args.spans)
    assert scrub_span(clean[0], redactor) is clean[0], "a clean span must not be copied"
    assert scrub_span(secret[0], redactor).attributes["db.password"] == "REDACTED"

    def scrub_all(spans):
        for span in spans:
            scrub_span(span, redactor)

    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(NullExporter(), max_queue_size=1 << 20))
    tracer = provider.get_tracer("bench")

    def start_spans(spans):
        for _ in spans:
            with tracer.start_as_current_span("GET") as span:
                span.set_attributes(CLEAN)

    scrub_clean = best_per_span(scrub_all, clean, args.repeat)
    scrub_secret = best_per_span(scrub_all, secret, args.repeat)
    span_cost = best_per_span(start_spans, clean, args.repeat)
    provider.shutdown()
    print(f"{'':<44} {'us/span':>9} {'x span cost':>12}")
    for label, value in [("scrub, nothing to scrub (8 attributes)", scrub_clean),
                         ("scrub, every rule fires (copy)", scrub_secret),
                         ("start_as_current_span + BatchSpanProcessor", span_cost)]:
        print(f"{label:<44} {value * 1e6:>9.2f} {value / span_cost:>12.3f}")


if __name__ == "__main__":
    main()
