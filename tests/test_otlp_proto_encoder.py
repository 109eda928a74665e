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


def _received_by_http(exporter_cls, spans):
    """What a real OTLP/HTTP receiver parsed from one export of ``spans`` by ``exporter_cls``."""
    from otlp_receiver import OtlpReceiver

    receiver = OtlpReceiver()
    endpoint = receiver.start_http()
    try:
        exporter = exporter_cls(endpoint=f"{endpoint}/v1/traces")
        assert exporter.export(spans).name == "SUCCESS"
        exporter.shutdown()
        [request] = receiver.requests["traces"]
        return request
    finally:
        receiver.stop()


def test_http_protobuf_exporter_sends_the_sdk_encoders_request():
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    spans = _spans()
    fast_cls = otlp_proto.http_span_exporter_class()
    assert fast_cls is not OTLPSpanExporter, "the SDK's export no longer encodes through encode_spans"
    mine = _received_by_http(fast_cls, spans)
    reference = _received_by_http(OTLPSpanExporter, spans)
    assert mine == reference == sdk_encode_spans(spans)
    assert len(mine.resource_spans[0].scope_spans[0].spans) > 0


def test_the_sdk_http_exporter_and_encoder_are_unchanged_beside_ours():
    """Replacing the HTTP exporter module's encoder look-up changes nothing for anyone else."""
    from opentelemetry.exporter.otlp.proto.http import trace_exporter as sdk_http

    otlp_proto.http_span_exporter_class()
    spans = _spans()
    assert sdk_http.encode_spans(spans) == sdk_encode_spans(spans)
    assert sdk_http.encode_spans(list(spans)) == sdk_encode_spans(spans)


def test_configure_builds_the_http_protobuf_span_exporter_with_this_encoder():
    from otel_monitoring.config import load_settings
    from otel_monitoring.exporters import build_exporters

    settings = load_settings({"traces_exporter": ("otlp",), "metrics_exporter": ("none",),
                              "logs_exporter": ("none",)},
                             environ={"OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                                      "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"})
    [exporter] = build_exporters(settings).spans
    inner = exporter
    while not hasattr(inner, "_client"):  # the scrubbing and delivery wrappers around the SDK exporter
        inner = inner.inner if hasattr(inner, "inner") else inner._exporter
    assert type(inner).__name__ == "FastHTTPSpanExporter"
    inner.shutdown()
