"""The wire-format span encoder gives the SDK encoder's message, byte for byte, and the OTLP span
exporters send exactly those bytes: what a receiver gets is what the SDK's exporter would send."""

from __future__ import annotations

import grpc
import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans as sdk_encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, Status, StatusCode, TraceFlags

from otel_monitoring.exporters import otlp_proto
from otel_monitoring.exporters.scrub import scrub_span
from otel_monitoring.redaction import Redactor
from test_otlp_json_encoder import _spans


def _sdk_bytes(spans) -> bytes:
    """What the SDK's OTLP exporters put on the wire for ``spans``."""
    return sdk_encode_spans(spans).SerializeToString()


def _ordinary_spans():
    """Spans as instrumented code makes them (the encoder's path that reads the span's fields): roots,
    local and remote parents, every kind, statuses without a message, attribute values of every type."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "svc", "host.name": "h"}),
                              shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("lib", "2.0")
    remote = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1))
    values = {"s": "x", "empty": "", "i": 7, "neg": -5, "max": 2**63 - 1, "min": -(2**63), "b": False, "t": True,
              "zero": 0.0, "negzero": -0.0, "nan": float("nan"), "f": 2.5, "list": ["a", "b"], "ints": [1, -1],
              "host.name": "h", "out_of_range": 2**64, "long": "y" * 20000}
    with tracer.start_as_current_span("root", attributes=values, kind=SpanKind.SERVER):
        for kind in SpanKind:
            with tracer.start_as_current_span("child", kind=kind, attributes={"s": "x", "zero": -0.0, "i": 1}) as span:
                span.set_status(Status(StatusCode.OK))
        with tracer.start_as_current_span("failed", attributes={"t": 1, "b": 1.0}) as span:
            span.set_status(Status(StatusCode.ERROR))
        with tracer.start_as_current_span(""):
            pass
    with tracer.start_as_current_span("remote child", context=trace.set_span_in_context(NonRecordingSpan(remote))):
        pass
    return exporter.get_finished_spans()


def test_same_bytes_as_protobuf_serializing_the_sdk_encoders_message():
    for spans in (_spans(), _ordinary_spans(), list(_spans()) + list(_ordinary_spans())):
        encoder = otlp_proto.SpanEncoder()
        assert encoder.encode(spans) == _sdk_bytes(spans)
        assert encoder.encode(spans) == _sdk_bytes(spans)  # again, from the caches
    assert otlp_proto.SpanEncoder().encode([]) == b"" == _sdk_bytes([])


def test_the_common_spans_are_read_from_their_fields(monkeypatch):
    """The spans the SDK hands to exporters take the path that reads their fields, not the general one."""
    encoder = otlp_proto.SpanEncoder()
    monkeypatch.setattr(encoder, "_span", lambda span: pytest.fail(f"general path for {span.name!r}"))
    spans = [span for span in _ordinary_spans() if span.name != "root"]  # the root has an unencodable value
    assert encoder.encode(spans) == _sdk_bytes(spans)


def test_an_attribute_equal_to_another_kinds_attribute_keeps_its_own_field():
    """One key and value as a resource, span, event and link attribute: each encoded in its own message."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"k": "v"}), shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t", attributes={"k": "v"})
    with tracer.start_as_current_span("a", attributes={"k": "v"}) as first:
        first.add_event("e", {"k": "v"})
    with tracer.start_as_current_span("b", links=[trace.Link(first.get_span_context(), {"k": "v"})]):
        pass
    spans = exporter.get_finished_spans()
    encoder = otlp_proto.SpanEncoder()
    assert encoder.encode(spans) == _sdk_bytes(spans)
    assert encoder.encode(spans[1:]) == _sdk_bytes(spans[1:])
    message = otlp_proto.encode_spans(spans)
    [span_a, span_b] = message.resource_spans[0].scope_spans[0].spans
    assert span_a.events[0].attributes[0].value.string_value == "v"
    assert span_b.links[0].attributes[0].value.string_value == "v"


def _secret_spans():
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    for _ in range(2):  # the second time from the caches
        with tracer.start_as_current_span("clean", attributes={"http.request.method": "GET", "n": 3}):
            pass
        with tracer.start_as_current_span("secrets", attributes={
                "db.password": "hunter2", "db.pwd_count": 5, "http.request.header.x-api-key": ["k1", "k2"],
                "url.full": "https://u:p@x.test/p?api_key=abc&q=1", "tags": ["Bearer tok-1", "ok"],
                "gen_ai.usage.input_tokens": 12}) as span:
            span.add_event("call", {"auth_token": "t0k", "note": "?signature=s1"})
            span.set_status(Status(StatusCode.ERROR, "failed with password=hunter2"))
        with tracer.start_as_current_span("status only") as span:
            span.set_status(Status(StatusCode.ERROR, "Authorization: Bearer abc.def"))
        linked = SpanContext(0xAB, 0xCD, is_remote=True, trace_flags=TraceFlags(1))
        with tracer.start_as_current_span("linked", links=[trace.Link(linked, {"api_key": "lnk-secret", "n": 1}),
                                                           trace.Link(linked, {"n": 2})]):
            pass
    # Limits drop attributes, events and links: a scrubbed copy keeps the counts.
    limited = TracerProvider(shutdown_on_exit=False, span_limits=SpanLimits(max_span_attributes=2, max_events=1,
                                                                            max_links=1))
    limited.add_span_processor(SimpleSpanProcessor(exporter))
    with limited.get_tracer("t").start_as_current_span("dropped", attributes={"password": "p4ss", "a": 1, "b": 2},
                                                        links=[trace.Link(linked, {"token": "t1"}),
                                                               trace.Link(linked, {"x": 1})]) as span:
        span.add_event("one", {"secret": "s"})
        span.add_event("two", {"secret": "s2"})
    return exporter.get_finished_spans()


def test_the_encoder_scrubs_exactly_as_the_scrubbing_wrapper():
    redactor = Redactor()
    spans = _secret_spans()
    expected = _sdk_bytes([scrub_span(span, redactor) for span in spans])
    encoder = otlp_proto.SpanEncoder(redactor)
    assert encoder.encode(spans) == expected
    assert encoder.encode(spans) == expected
    message = otlp_proto.encode_spans([scrub_span(span, redactor) for span in spans])
    # The secrets are looked for in the decoded text, not the raw bytes: random ids and times can
    # hold any short byte string.
    texts = [(span.name, str(list(span.attributes) + list(span.events) + list(span.links)) + span.status.message)
             for resource in message.resource_spans for scope in resource.scope_spans for span in scope.spans]
    for secret in ("hunter2", "t0k", "abc", "p4ss", "lnk-secret", '"t1"', "s2"):
        assert not [name for name, text in texts if secret in text], (secret, texts)
    assert sum(text.count("REDACTED") for _, text in texts) >= 10
    dropped = [s for s in message.resource_spans[-1].scope_spans[0].spans if s.name == "dropped"][0]
    assert (dropped.dropped_attributes_count, dropped.dropped_events_count, dropped.dropped_links_count) == (1, 1, 1)
    # a process's other encoders are not scrubbing ones
    assert otlp_proto.encode_spans_bytes(spans) == _sdk_bytes(spans)


def test_same_message_as_the_sdk_encoder():  # the message the tests below parse
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


def _received_by_grpc(exporter, spans, receiver):
    assert exporter.export(spans).name == "SUCCESS"
    exporter.shutdown()
    return receiver.raw[-1]


def test_grpc_exporter_sends_the_bytes_the_sdk_exporter_sends():
    """A real gRPC receiver (the collector's trace service) gets the SDK exporter's exact bytes."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from otlp_receiver import OtlpReceiver

    spans = list(_spans()) + list(_ordinary_spans())
    receiver = OtlpReceiver()
    endpoint = receiver.start_grpc()
    try:
        fast = otlp_proto.grpc_span_exporter_class()(endpoint=endpoint, insecure=True, headers={"x-t": "1"})
        mine = _received_by_grpc(fast, spans, receiver)
        reference = _received_by_grpc(OTLPSpanExporter(endpoint=endpoint, insecure=True), spans, receiver)
        assert mine == reference == _sdk_bytes(spans)
        assert receiver.requests["traces"][0] == receiver.requests["traces"][1] == sdk_encode_spans(spans)
        assert receiver.headers[0]["x-t"] == "1"
    finally:
        receiver.stop()


def test_grpc_exporter_retries_through_the_sdks_reconnection():
    """UNAVAILABLE makes the SDK's exporter close its channel and build a new stub: ours again, so the
    retried request is the same bytes."""
    from otlp_receiver import OtlpReceiver

    spans = _ordinary_spans()
    receiver = OtlpReceiver()
    endpoint = receiver.start_grpc()
    try:
        receiver.fail_next = [grpc.StatusCode.UNAVAILABLE]
        exporter = otlp_proto.grpc_span_exporter_class()(endpoint=endpoint, insecure=True, timeout=30)
        assert exporter.export(spans).name == "SUCCESS"
        assert receiver.raw == [_sdk_bytes(spans)] and receiver.fail_next == []
        receiver.fail_next = [grpc.StatusCode.INVALID_ARGUMENT]  # not retryable: the batch fails
        assert exporter.export(spans).name == "FAILURE"
        exporter.shutdown()
        assert len(receiver.raw) == 1
    finally:
        receiver.stop()


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
def test_configured_span_exporter_sends_the_scrubbed_sdk_bytes(protocol, monkeypatch):
    """configure()'s OTLP span exporter scrubs as it encodes: a receiver gets the bytes the SDK exporter
    sends for the spans the scrubbing wrapper would have handed it. The environment's options apply."""
    from otel_monitoring.config import load_settings
    from otel_monitoring.exporters import build_exporters
    from otlp_receiver import OtlpReceiver

    receiver = OtlpReceiver()
    endpoint = receiver.start_grpc() if protocol == "grpc" else receiver.start_http()
    try:
        environ = {"OTEL_EXPORTER_OTLP_PROTOCOL": protocol, "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                   "OTEL_EXPORTER_OTLP_TRACES_HEADERS": "x-tenant=acme", "OTEL_EXPORTER_OTLP_COMPRESSION": "gzip"}
        for key, value in environ.items():
            monkeypatch.setenv(key, value)
        settings = load_settings({"metrics_exporter": ("none",), "logs_exporter": ("none",)})
        [exporter] = build_exporters(settings).spans
        spans = _secret_spans()
        assert exporter.export(spans).name == "SUCCESS"
        exporter.shutdown()
        redactor = Redactor()
        assert receiver.raw == [_sdk_bytes([scrub_span(span, redactor) for span in spans])]
        assert receiver.headers[0]["x-tenant"] == "acme"
        if protocol == "http/protobuf":
            assert receiver.headers[0]["content-encoding"] == "gzip"
    finally:
        receiver.stop()
