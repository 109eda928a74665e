"""OTLP protobuf encoding of spans, written straight to the wire format, and the OTLP span
exporters that send those bytes as they are.

The SDK's encoder builds one protobuf message object per span, attribute, key-value and value
(Python keyword calls into the C extension for each) and then serializes them: it is most of
the export side's CPU per span. ``SpanEncoder`` writes the bytes of an ``ExportTraceServiceRequest``
directly, in field-number order, so they are the bytes protobuf itself would serialize from the
SDK encoder's message (the tests compare them byte for byte): fixed-layout fields with precompiled
structs, and the encoded form of each attribute, span name and kind, resource and scope cached,
since instrumented code repeats the same few. Spans of the SDK's own classes are read from their
fields (their properties copy containers and cost a call each); other span types go through the
public API.

Given the redactor, the encoder also scrubs what ``scrub.scrub_span`` scrubs (span, event and
link attributes, the status message), with the scrubbed encoding of a repeated attribute cached: the
exporters below then need no scrubbing wrapper and no per-span copy.

The gRPC exporter is the SDK's (channel, TLS, headers, compression, timeout, retries with backoff,
reconnection: all its own) with the generated stub replaced by one whose request serializer passes
these bytes through, instead of parsing them into a message that the stub serializes again. The
http/protobuf exporter likewise posts them as they are.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceState

from ..redaction import REDACTED

__all__ = ["SpanEncoder", "encode_spans", "encode_spans_bytes", "group_spans", "grpc_span_exporter_class",
           "http_span_exporter_class"]

_logger = logging.getLogger("opentelemetry.exporter.otlp.proto.common._internal")  # where the SDK encoder logs the same failures

_FIXED64 = struct.Struct("<Q").pack
_FIXED32 = struct.Struct("<I").pack
_DOUBLE = struct.Struct("<d").pack
_TIMES = struct.Struct("<BQBQ").pack  # Span.start_time_unix_nano (7) and end_time_unix_nano (8), fixed64

_KIND = {kind: bytes((0x30, kind.value + 1)) for kind in SpanKind}  # Span.kind (6): OTLP's are SDK's + 1
_FLAGS_LOCAL = b"\x85\x01" + _FIXED32(0x100)  # Span.flags (16, fixed32): HAS_IS_REMOTE
_FLAGS_REMOTE = b"\x85\x01" + _FIXED32(0x300)  # ... | IS_REMOTE
_LINK_FLAGS_LOCAL = b"\x35" + _FIXED32(0x100)  # Link.flags (6, fixed32)
_LINK_FLAGS_REMOTE = b"\x35" + _FIXED32(0x300)
_CACHE_LIMIT = 4096


def _varint(value: int) -> bytes:
    if value < 0x80:
        return bytes((value,))
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_LENGTHS = [_varint(n) for n in range(1 << 14)]  # the length prefix of anything under 16 KiB: an index


def _field(tag: bytes, payload: bytes) -> bytes:
    """A length-delimited field: tag, length, payload."""
    size = len(payload)
    return tag + (_LENGTHS[size] if size < 16384 else _varint(size)) + payload


def _any_value(value: Any) -> bytes:
    """AnyValue message bytes (oneof checked in the SDK encoder's order: bool before int)."""
    if isinstance(value, bool):
        return b"\x10\x01" if value else b"\x10\x00"
    if isinstance(value, str):
        return _field(b"\x0a", value.encode("utf-8"))
    if isinstance(value, int):
        if not -(1 << 63) <= value < 1 << 63:
            raise ValueError(f"Value out of range: {value}")  # as protobuf says of an int64
        return b"\x18" + _varint(value & 0xFFFFFFFFFFFFFFFF)  # int64: two's complement as uint64
    if isinstance(value, float):
        return b"\x21" + _DOUBLE(value)
    if isinstance(value, bytes):
        return _field(b"\x3a", value)
    if isinstance(value, Sequence):
        return _field(b"\x2a", b"".join(_field(b"\x0a", _any_value(v)) for v in value))
    if isinstance(value, Mapping):
        return _field(b"\x32", b"".join(_field(b"\x0a", _key_value(str(k), v)) for k, v in value.items()))
    raise TypeError(f"Invalid type {type(value)} of value {value}")


def _key_value(key: str, value: Any) -> bytes:
    return _field(b"\x0a", key.encode("utf-8")) + _field(b"\x12", _any_value(value))


def _trace_state(tag: bytes, trace_state: Any) -> bytes:
    if not trace_state:
        return b""
    return _field(tag, ",".join(f"{key}={value}" for key, value in trace_state.items()).encode("utf-8"))


def _resource(resource: Any) -> bytes:
    return _field(b"\x0a", _attributes_uncached(b"\x0a", resource.attributes))  # ResourceSpans.resource (1)


def _scope(scope: Any) -> bytes:
    """ScopeSpans.scope (1), always present (the SDK encoder sets it, empty for no scope)."""
    payload = b""
    if scope is not None:
        if scope.name:
            payload += _field(b"\x0a", scope.name.encode("utf-8"))
        if scope.version:
            payload += _field(b"\x12", scope.version.encode("utf-8"))
        payload += _attributes_uncached(b"\x1a", scope.attributes)
    return _field(b"\x0a", payload)


def _attributes_uncached(tag: bytes, attributes: Any) -> bytes:
    """Resource and scope attributes: encoded once per resource or scope, never scrubbed (as the
    scrubbing wrapper leaves them to the collector)."""
    parts = []
    for key, value in (attributes or {}).items():
        try:
            parts.append(_field(tag, _key_value(key, value)))
        except Exception as error:  # as the SDK encoder: the attribute is dropped
            _logger.exception("Failed to encode key %s: %s", key, error)
    return b"".join(parts)


def _status(status: Any, redactor: Any) -> bytes:
    if status is None:
        return b""
    description = status.description
    code = status.status_code
    if not description and code is StatusCode.UNSET:
        return _UNSET_STATUS
    payload = b""
    if description:
        if redactor is not None:
            description = redactor.scrub_text(description)
        payload += _field(b"\x12", description.encode("utf-8"))
    if code.value:
        payload += b"\x18" + _varint(code.value)
    return _field(b"\x7a", payload)


_UNSET_STATUS = b"\x7a\x00"  # Span.status (15), empty: present, as the SDK encoder sets it
# What ends a span whose status has no message: its status and flags, by status code and whether the
# parent is remote.
_ENDINGS = {(code, remote): (_UNSET_STATUS if code is StatusCode.UNSET else b"\x7a\x02\x18" + bytes((code.value,)))
            + (_FLAGS_REMOTE if remote else _FLAGS_LOCAL) for code in StatusCode for remote in (False, True)}

# The properties an encoder reads; a span class that keeps ReadableSpan's own is read from its fields.
_PROPERTIES = ("name", "context", "get_span_context", "kind", "parent", "start_time", "end_time", "status",
               "attributes", "events", "links", "resource", "instrumentation_scope", "dropped_attributes",
               "dropped_events", "dropped_links")


def _reads_own_fields(cls: type) -> bool:
    return issubclass(cls, ReadableSpan) and all(
        getattr(cls, name, None) is getattr(ReadableSpan, name) for name in _PROPERTIES)


def _own(span: Any, private: str, public: str) -> Any:
    found = getattr(span, private, None)
    return getattr(span, public) if found is None else found


class _Identity:
    """Encodings of resources and scopes by identity (the SDK shares one object per provider/tracer)."""

    def __init__(self, encode: Callable[[Any], bytes]) -> None:
        self.encode = encode
        self.entries: dict[int, tuple[Any, bytes]] = {}

    def get(self, thing: Any) -> bytes:
        found = self.entries.get(id(thing))
        if found is None or found[0] is not thing:
            if len(self.entries) > 1024:
                self.entries.clear()
            found = self.entries[id(thing)] = (thing, self.encode(thing))
        return found[1]


def _canonical(seen: dict[int, int], objects: dict[int, Any], thing: Any) -> int:
    """The id of the first object seen equal to ``thing`` (found by identity in the common case)."""
    found = seen.get(id(thing))
    if found is not None:
        return found
    for known_id, known in objects.items():
        if known == thing:
            seen[id(thing)] = known_id
            objects.setdefault(id(thing), thing)  # keeps ``thing`` alive, so its id stays its own
            return known_id
    seen[id(thing)] = id(thing)
    objects[id(thing)] = thing
    return id(thing)


def group_spans(spans: Sequence[Any], encode: Callable[[Any], Any]) -> list[tuple[Any, list[tuple[Any, list[Any]]]]]:
    """``[(resource, [(scope, [encode(span), ...]), ...]), ...]``: spans grouped by equal resources
    and scopes in order of first appearance, as the SDK encoders group them, but found by identity
    first (hashing a Resource serializes its attributes: once per span otherwise)."""
    grouped: dict[int, dict[int, list[Any]]] = {}
    resources: dict[int, Any] = {}
    scopes: dict[int, Any] = {}
    resource_ids: dict[int, int] = {}
    scope_ids: dict[int, int] = {}
    for span in spans:
        resource_id = _canonical(resource_ids, resources, span.resource)
        scope_id = _canonical(scope_ids, scopes, span.instrumentation_scope or None)
        by_scope = grouped.get(resource_id)
        if by_scope is None:
            by_scope = grouped[resource_id] = {}
        encoded = by_scope.get(scope_id)
        if encoded is None:
            encoded = by_scope[scope_id] = []
        encoded.append(encode(span))
    return [(resources[resource_id], [(scopes[scope_id], encoded) for scope_id, encoded in by_scope.items()])
            for resource_id, by_scope in grouped.items()]


class SpanEncoder:
    """Serialized ``ExportTraceServiceRequest``s of span batches, scrubbed by ``redactor`` (if any)
    exactly as ``scrub.scrub_span`` would. One per exporter: it holds the caches."""

    def __init__(self, redactor: Any = None) -> None:
        self.redactor = redactor
        self._span_attributes: dict[tuple, bytes] = {}  # Span.attributes fields, scrubbed
        self._other_attributes: dict[tuple, bytes] = {}  # events' and links' (scrubbed) by tag
        self._heads: list[dict[str, bytes]] = [{} for _ in SpanKind]  # name and kind fields, by kind
        self._resources = _Identity(_resource)
        self._scopes = _Identity(_scope)
        self._own_fields: dict[type, bool] = {}

    # -- attributes --

    def _attribute(self, tag: bytes, key: str, value: Any, scrub: bool) -> bytes | None:
        """One KeyValue field, its value scrubbed when ``scrub``; None (logged) when it cannot be encoded."""
        if scrub and self.redactor is not None:  # outside the try: a scrubbing failure fails the export
            value = REDACTED if self.redactor.is_secret_key(key) else self.redactor.scrub_value(value)
        try:
            return _field(tag, _key_value(key, value))
        except Exception as error:  # as the SDK encoder: the attribute is dropped, the span kept
            _logger.exception("Failed to encode key %s: %s", key, error)
            return None

    def _cached_attribute(self, cache: dict[tuple, bytes], cache_key: tuple, tag: bytes, key: str, value: Any,
                          scrub: bool) -> bytes | None:
        encoded = self._attribute(tag, key, value, scrub)
        # equal values of one type encode alike, except 0.0 and -0.0 (and NaN, never found again)
        if encoded is not None and (value or type(value) is not float):
            if len(cache) >= _CACHE_LIMIT:
                cache.clear()
            cache[cache_key] = encoded
        return encoded

    def _attributes(self, tag: bytes, attributes: Any, scrub: bool) -> bytes:
        """Every attribute as a repeated KeyValue field ``tag``; bad values are skipped and logged."""
        if not attributes:
            return b""
        cache = self._span_attributes if tag == b"\x4a" else self._other_attributes
        parts = []
        # BoundedAttributes iterates through the Mapping ABC; its plain dict is several times faster
        for key, value in getattr(attributes, "_dict", attributes).items():
            kind = type(value)
            if kind is str or kind is int or kind is bool or kind is float:
                cache_key = (tag, key, kind, value)
                encoded = cache.get(cache_key)
                if encoded is None:
                    encoded = self._cached_attribute(cache, cache_key, tag, key, value, scrub)
            else:
                encoded = self._attribute(tag, key, value, scrub)
            if encoded is not None:
                parts.append(encoded)
        return b"".join(parts)

    # -- spans --

    def _events(self, events: Any) -> bytes:
        parts = []
        for event in events:
            payload = b""
            if event.timestamp:
                payload += b"\x09" + _FIXED64(event.timestamp)
            if event.name:
                payload += _field(b"\x12", event.name.encode("utf-8"))
            payload += self._attributes(b"\x1a", event.attributes, True)
            if event.dropped_attributes:
                payload += b"\x20" + _varint(event.dropped_attributes)
            parts.append(_field(b"\x5a", payload))  # Span.events (11)
        return b"".join(parts)

    def _links(self, links: Any) -> bytes:
        parts = []
        for link in links:
            context = link.context
            payload = (b"\x0a\x10" + context.trace_id.to_bytes(16, "big") + b"\x12\x08"
                       + context.span_id.to_bytes(8, "big") + self._attributes(b"\x22", link.attributes, True))
            if link.dropped_attributes:
                payload += b"\x28" + _varint(link.dropped_attributes)
            payload += _LINK_FLAGS_REMOTE if context.is_remote else _LINK_FLAGS_LOCAL
            parts.append(_field(b"\x6a", payload))  # Span.links (13)
        return b"".join(parts)

    def _head(self, name: str, kind: Any) -> bytes:
        """Span.name (5) and Span.kind (6)."""
        heads = self._heads[kind._value_]
        encoded = heads.get(name)
        if encoded is None:
            encoded = (_field(b"\x2a", name.encode("utf-8")) if name else b"") + _KIND[kind]
            if len(heads) >= _CACHE_LIMIT:
                heads.clear()
            heads[name] = encoded
        return encoded

    def _span(self, span: Any) -> bytes:
        """ScopeSpans.spans (2): any span, through the public API (and the SDK span's own containers)."""
        context = span.get_span_context()
        parts = [b"\x0a\x10", (context.trace_id if context else 0).to_bytes(16, "big"),
                 b"\x12\x08", (context.span_id if context else 0).to_bytes(8, "big")]
        if context is not None and context.trace_state:
            parts.append(_trace_state(b"\x1a", context.trace_state))
        parent = span.parent
        if parent:
            parts.append(b"\x22\x08")
            parts.append(parent.span_id.to_bytes(8, "big"))
        parts.append(self._head(span.name, span.kind))
        if span.start_time:
            parts.append(b"\x39" + _FIXED64(span.start_time))
        if span.end_time:
            parts.append(b"\x41" + _FIXED64(span.end_time))
        # An SDK span's own containers: its properties copy them per read (a read-only view of the
        # attributes iterated through the Mapping ABC, tuples of the events and links)
        parts.append(self._attributes(b"\x4a", _own(span, "_attributes", "attributes"), True))
        if span.dropped_attributes:
            parts.append(b"\x50" + _varint(span.dropped_attributes))
        events = _own(span, "_events", "events")
        if events:
            parts.append(self._events(events))
        if span.dropped_events:
            parts.append(b"\x60" + _varint(span.dropped_events))
        links = _own(span, "_links", "links")
        if links:
            parts.append(self._links(links))
        if span.dropped_links:
            parts.append(b"\x70" + _varint(span.dropped_links))
        parts.append(_status(span.status, self.redactor))
        parts.append(_FLAGS_REMOTE if parent is not None and parent.is_remote else _FLAGS_LOCAL)
        return _field(b"\x12", b"".join(parts))

    def encode(self, spans: Sequence[Any]) -> bytes:
        """The serialized ``ExportTraceServiceRequest`` of ``spans``."""
        groups: dict[int, dict[int, list[bytes]]] = {}
        resources: dict[int, Any] = {}
        scopes: dict[int, Any] = {}
        resource_ids: dict[int, int] = {}
        scope_ids: dict[int, int] = {}
        own_fields = self._own_fields
        cache = self._span_attributes
        heads = self._heads
        last_resource = last_scope = target = None
        for span in spans:
            cls = type(span)
            own = own_fields.get(cls)
            if own is None:
                own = own_fields[cls] = _reads_own_fields(cls)
            if own:
                resource, scope = span._resource, span._instrumentation_scope
            else:
                resource, scope = span.resource, span.instrumentation_scope
            if target is None or resource is not last_resource or scope is not last_scope:
                last_resource, last_scope = resource, scope
                resource_id = _canonical(resource_ids, resources, resource)
                scope_id = _canonical(scope_ids, scopes, scope or None)
                by_scope = groups.get(resource_id)
                if by_scope is None:
                    by_scope = groups[resource_id] = {}
                target = by_scope.get(scope_id)
                if target is None:
                    target = by_scope[scope_id] = []
            if not own:
                target.append(self._span(span))
                continue
            # The common span, read from its fields: no trace state, events or links, nothing
            # dropped, a status without message. Anything else takes the general path.
            context, attributes, events, links, status = (span._context, span._attributes, span._events,
                                                          span._links, span._status)
            parent = span._parent
            if not (type(context) is SpanContext and type(attributes) is BoundedAttributes and not attributes.dropped
                    and (events is None or type(events) is BoundedList and not events._dq and not events.dropped)
                    and (links is None or type(links) is BoundedList and not links._dq and not links.dropped)
                    and type(status) is Status and status._description is None
                    and (context[4] is None or type(context[4]) is TraceState and not context[4]._dict)
                    and (parent is None or type(parent) is SpanContext) and span._start_time and span._end_time):
                target.append(self._span(span))
                continue
            name, kind = span._name, span._kind
            head = heads[kind._value_].get(name)
            if head is None:
                head = self._head(name, kind)
            if parent is None:
                parts = [b"\x0a\x10", context[0].to_bytes(16, "big"), b"\x12\x08", context[1].to_bytes(8, "big"),
                         head, _TIMES(0x39, span._start_time, 0x41, span._end_time)]
                ending = _ENDINGS[status._status_code, False]
            else:
                parts = [b"\x0a\x10", context[0].to_bytes(16, "big"), b"\x12\x08", context[1].to_bytes(8, "big"),
                         b"\x22\x08", parent[1].to_bytes(8, "big"), head,
                         _TIMES(0x39, span._start_time, 0x41, span._end_time)]
                ending = _ENDINGS[status._status_code, parent[2]]
            for key, value in attributes._dict.items():
                kind = type(value)
                if kind is str or kind is int or kind is bool or kind is float:
                    cache_key = (b"\x4a", key, kind, value)
                    encoded = cache.get(cache_key)
                    if encoded is None:
                        encoded = self._cached_attribute(cache, cache_key, b"\x4a", key, value, True)
                else:
                    encoded = self._attribute(b"\x4a", key, value, True)
                if encoded is not None:
                    parts.append(encoded)
            parts.append(ending)
            body = b"".join(parts)
            size = len(body)
            target.append(b"\x12" + (_LENGTHS[size] if size < 16384 else _varint(size)))
            target.append(body)
        out = []
        for resource_id, by_scope in groups.items():
            resource = resources[resource_id]
            resource_parts = [self._resources.get(resource)]
            for scope_id, encoded in by_scope.items():
                scope = scopes[scope_id]
                encoded.insert(0, self._scopes.get(scope))
                if scope is not None and scope.schema_url:
                    encoded.append(_field(b"\x1a", scope.schema_url.encode("utf-8")))  # ScopeSpans.schema_url (3)
                resource_parts.append(_field(b"\x12", b"".join(encoded)))  # ResourceSpans.scope_spans (2)
            if resource.schema_url:
                resource_parts.append(_field(b"\x1a", resource.schema_url.encode("utf-8")))
            out.append(_field(b"\x0a", b"".join(resource_parts)))  # ExportTraceServiceRequest.resource_spans (1)
        return b"".join(out)


_encoder = SpanEncoder()


def encode_spans_bytes(spans: Sequence[Any]) -> bytes:
    """The serialized ``ExportTraceServiceRequest`` of ``spans`` (not scrubbed)."""
    return _encoder.encode(spans)


def encode_spans(spans: Sequence[Any]) -> Any:
    """``spans`` as an ``ExportTraceServiceRequest`` message (what the SDK's encoder returns)."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    return ExportTraceServiceRequest.FromString(encode_spans_bytes(spans))


_TRACE_EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class _EncodedTraceServiceStub:
    """The generated ``TraceServiceStub``, but sending the request as the bytes it already is."""

    def __init__(self, channel: Any) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

        arguments = {"request_serializer": None, "response_deserializer": ExportTraceServiceResponse.FromString}
        try:
            self.Export = channel.unary_unary(_TRACE_EXPORT, _registered_method=True, **arguments)
        except TypeError:  # a gRPC before registered methods
            self.Export = channel.unary_unary(_TRACE_EXPORT, **arguments)


def grpc_span_exporter_class() -> type:
    """The SDK's OTLP gRPC span exporter sending our encoder's bytes (everything else, retries
    included, its own). ``redactor=`` scrubs what it sends."""
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

    class FastOTLPSpanExporter(OTLPSpanExporter):
        def __init__(self, *args: Any, redactor: Any = None, **kwargs: Any) -> None:
            self._encoder = SpanEncoder(redactor)
            super().__init__(*args, **kwargs)

        def _initialize_channel_and_stub(self) -> None:
            # called at start and again by the SDK's reconnection after UNAVAILABLE
            super()._initialize_channel_and_stub()
            self._client = _EncodedTraceServiceStub(self._channel)

        def _translate_data(self, data: Sequence[Any]) -> Any:
            return self._encoder.encode(data)

    return FastOTLPSpanExporter


class _Encoded(tuple):
    """A batch of spans with its request already encoded (what the HTTP exporter's ``encode_spans``
    look-up hands back as the message), a tuple so the exporter still counts the spans."""

    request: bytes

    def SerializePartialToString(self) -> bytes:  # noqa: N802 - protobuf's name, called by the exporter
        return self.request


def _dispatching_encoder(sdk_encode: Callable[[Sequence[Any]], Any]) -> Callable[[Sequence[Any]], Any]:
    def encode_spans(spans: Sequence[Any]) -> Any:
        if type(spans) is _Encoded:
            return spans  # our exporter's batch: its bytes are ready
        return sdk_encode(spans)

    encode_spans._otel_monitoring = True  # type: ignore[attr-defined]
    return encode_spans


def http_span_exporter_class() -> type | None:
    """The SDK's OTLP http/protobuf span exporter with this encoder (everything else, retries and
    size limit included, its own); ``redactor=`` scrubs what it sends.

    The SDK's ``export`` encodes through its module's ``encode_spans`` and sends
    ``SerializePartialToString()`` of the result. That name is replaced once by a function passing
    anything but our pre-encoded batches to the SDK's encoder unchanged, so other exporters in the
    process behave as before, and our exporter hands over a batch whose bytes are already written
    (no message built or parsed). If the SDK's module no longer looks up that name: None (the
    caller uses the SDK's own exporter)."""
    from opentelemetry.exporter.otlp.proto.http import trace_exporter as sdk_http

    base = sdk_http.OTLPSpanExporter
    current = getattr(sdk_http, "encode_spans", None)
    if current is None or "encode_spans" not in base.export.__code__.co_names:
        return None
    if not getattr(current, "_otel_monitoring", False):
        sdk_http.encode_spans = _dispatching_encoder(current)

    class FastHTTPSpanExporter(base):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, redactor: Any = None, **kwargs: Any) -> None:
            self._encoder = SpanEncoder(redactor)
            super().__init__(*args, **kwargs)

        def export(self, spans: Sequence[Any]) -> Any:
            try:
                batch = _Encoded(spans)
                batch.request = self._encoder.encode(batch)
            except Exception:  # noqa: BLE001 - the SDK's encoder then, with its own error handling
                redactor = self._encoder.redactor
                if redactor is not None:  # never unscrubbed: a scrubbing failure here fails the export
                    from .scrub import scrub_span

                    spans = [scrub_span(span, redactor) for span in spans]
                return super().export(spans)
            return super().export(batch)

    return FastHTTPSpanExporter
