"""The fast span encoder writes exactly the reference OTLP/JSON encoder's document."""

from __future__ import annotations

import json

from google.protobuf import json_format
from opentelemetry import trace
from opentelemetry.exporter.otlp.json.file.trace_exporter import _encode_spans_to_dict
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, Status, StatusCode, TraceFlags, TraceState

from otel_monitoring.exporters import otlp_json
from otel_monitoring.exporters.file import OtlpFileSpanExporter

ODD_VALUES = {
    "s": "x", "empty": "", "unicode": "é ✓ \u2028", "i": 2**62, "neg": -3, "zero": 0, "f": 1.5,
    "nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "big": 1e300, "b": True,
    "ints": [1, 2], "strs": ["a", ""], "floats": [0.1], "bools": [False], "none_list": [],
}


def _spans():
    exporter = InMemorySpanExporter()
    # the third is a different object equal to the second: its spans join the second's group
    resources = [Resource.create({"service.name": "a", "n": 1}), Resource({"service.name": "b"}, "https://s"),
                 Resource({"service.name": "b"}, "https://s")]
    for resource in resources:
        provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        scoped = provider.get_tracer("scope.a", "1.0", schema_url="https://x", attributes={"sa": "v"})
        bare = provider.get_tracer("")
        remote = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1),
                             trace_state=TraceState([("k", "v"), ("q", "w")]))
        with scoped.start_as_current_span("root", attributes=ODD_VALUES, kind=trace.SpanKind.SERVER,
                                          context=trace.set_span_in_context(NonRecordingSpan(remote))) as root:
            root.add_event("ev", {"k": "v"})
            root.add_event("")
            with bare.start_as_current_span("child", kind=trace.SpanKind.CLIENT,
                                            links=[Link(root.get_span_context(), {"a": 1}), Link(remote)]) as child:
                child.set_status(Status(StatusCode.ERROR, "boom"))
                try:
                    raise ValueError("x")
                except ValueError as error:
                    child.record_exception(error)
            for kind in (trace.SpanKind.PRODUCER, trace.SpanKind.CONSUMER, trace.SpanKind.INTERNAL):
                with scoped.start_as_current_span("", kind=kind) as other:
                    other.set_status(Status(StatusCode.OK))
    return exporter.get_finished_spans()


def test_same_document_as_the_reference_encoder():
    spans = _spans()
    mine, reference = otlp_json.encode_spans(spans), _encode_spans_to_dict(spans)
    assert json.dumps(mine, sort_keys=False) == json.dumps(reference, sort_keys=False)  # same keys, same order
    assert json.loads(otlp_json.spans_line(spans)) == json.loads(json.dumps(reference))
    assert otlp_json.encode_spans([]) is None and _encode_spans_to_dict([]) is None
    assert len(mine["resourceSpans"]) == 2


def test_the_line_parses_as_an_otlp_request(tmp_path):
    spans = _spans()
    exporter = OtlpFileSpanExporter(str(tmp_path), max_bytes=0, max_backups=0)
    exporter.export(spans)
    exporter.export(spans[:1])
    exporter.shutdown()
    lines = (tmp_path / "traces.jsonl").read_bytes().splitlines()
    assert len(lines) == 2
    document = json.loads(lines[0])
    for resource_spans in document["resourceSpans"]:  # OTLP/JSON ids are hex; protobuf's JSON wants base64
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for item in [span, *span.get("links", [])]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in item:
                            item[key] = __import__("base64").b64encode(bytes.fromhex(item[key])).decode()
    request = json_format.ParseDict(document, ExportTraceServiceRequest())
    parsed = [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    assert sorted(s.name for s in parsed) == sorted(s.name for s in spans)
    by_name = {s.name: s for s in parsed}
    assert by_name["child"].status.code == 2 and by_name["child"].status.message == "boom"
    assert sorted(s.span_id for s in parsed) == sorted(s.context.span_id.to_bytes(8, "big") for s in spans)
    assert by_name["root"].parent_span_id == (0xDEF).to_bytes(8, "big")
