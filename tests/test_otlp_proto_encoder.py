"""The wire-format span encoder gives the SDK encoder's message, field by field."""

from __future__ import annotations

from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans

from otel_monitoring.exporters import otlp_proto
from test_otlp_json_encoder import _spans


def test_same_message_as_the_sdk_encoder():
    spans = _spans()
    mine, reference = otlp_proto.encode_spans(spans), sdk_encode_spans(spans)
    assert mine == reference
    # and again from the caches (resources, scopes, attributes, names already encoded)
    assert otlp_proto.encode_spans(spans) == reference
    assert otlp_proto.encode_spans_bytes([]) == b""


def test_negative_and_large_integers_and_nested_values():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("s", attributes={
            "neg": -1, "min": -(2**63), "max": 2**63 - 1, "big": 300, "utf": "ünï", "bytes_like": "x" * 200}):
        pass
    spans = exporter.get_finished_spans()
    assert otlp_proto.encode_spans(spans) == sdk_encode_spans(spans)
