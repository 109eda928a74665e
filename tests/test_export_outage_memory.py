"""A failed OTLP export frees its batch when it returns, not when the garbage collector next runs.

The SDK's OTLP exporters keep a failed export's error on a result object their own frame holds,
while the error's traceback holds that frame: a cycle that kept each failed batch of spans (and
metric and log batches) alive until the collector's oldest generation ran. Through a collector
outage that was most of the process's memory growth. Each exporter here is the one
``configure()`` builds, sending to a port where nothing listens.
"""

from __future__ import annotations

import gc
import socket
import weakref

import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_monitoring.config import load_settings
from otel_monitoring.exporters import build_exporters


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed again when the block ends: nothing listens there


def _spans(count: int) -> list:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "outage"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("t")
    for i in range(count):
        with tracer.start_as_current_span("call", attributes={"i": i}) as span:
            span.add_event("e")
    return list(memory.get_finished_spans())


# http/protobuf is not here: urllib3 leaves cycles of its own on a refused connection (an
# exception whose traceback holds the frame that holds it), which hold the exporters' frames above.
@pytest.mark.parametrize("protocol", ["grpc"])
def test_a_failed_export_frees_its_batch_at_once(protocol):
    settings = load_settings({"service_name": "outage", "endpoint": f"http://127.0.0.1:{_closed_port()}",
                              "protocol": protocol, "timeout": 1.0, "strict": True})
    exporter = build_exporters(settings).spans[0]
    spans = _spans(64)
    alive = [weakref.ref(span) for span in spans]
    gc.collect()
    gc.disable()  # only reference counting frees anything from here
    try:
        assert exporter.export(spans) is SpanExportResult.FAILURE
        del spans
        assert sum(ref() is not None for ref in alive) == 0
    finally:
        gc.enable()
        exporter.shutdown()
