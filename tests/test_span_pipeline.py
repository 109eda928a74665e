"""The wrapper's span start and the provider's processor list give exactly what the SDK gives."""

from __future__ import annotations

import itertools
import json

import pytest
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, SpanProcessor, SynchronousMultiSpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags, TraceState

from otel_monitoring.instrumentation.span_start import starter
from otel_monitoring.span_pipeline import LeanMultiSpanProcessor

ATTRIBUTES = {"otel_monitoring.component": "c", "otel_monitoring.operation": "op", "n": 3,
              "tags": ["a", "b"], "long": "abcdefgh"}


class CountingIds(IdGenerator):
    """The same id sequence in two providers, so their spans can be compared id for id."""

    def __init__(self, random: bool):
        self._next = itertools.count(1)
        self._random = random

    def generate_span_id(self) -> int:
        return next(self._next)

    def generate_trace_id(self) -> int:
        return 0xF0000 + next(self._next)

    def is_trace_id_random(self) -> bool:
        return self._random


class Seen(SpanProcessor):
    """What the processors see: attributes at start, the ended span."""

    def __init__(self):
        self.started, self.ended = [], []

    def on_start(self, span, parent_context=None):
        self.started.append((dict(span.attributes), parent_context))

    def on_end(self, span):
        self.ended.append(span)


def _provider(sampler, random_ids, limits=None):
    seen = Seen()
    provider = TracerProvider(sampler=sampler, resource=Resource.create({"service.name": "s"}),
                              id_generator=CountingIds(random_ids), span_limits=limits, shutdown_on_exit=False,
                              active_span_processor=LeanMultiSpanProcessor())
    provider.add_span_processor(seen)
    return provider.get_tracer("scope", "1.0"), seen


def _exported(span):
    """The span as exported, but its times (two spans cannot start at the same nanosecond)."""
    document = json.loads(span.to_json())
    assert document.pop("start_time") and document.pop("end_time")
    return document


def _view(span):
    context = span.get_span_context()
    view = {"type": type(span).__name__, "trace_id": context.trace_id, "span_id": context.span_id,
            "flags": int(context.trace_flags), "state": context.trace_state.to_header(),
            "remote": context.is_remote, "recording": span.is_recording()}
    if span.is_recording():
        span.end()
        view.update(name=span.name, kind=span.kind, attributes=dict(span.attributes),
                    dropped=span.dropped_attributes, parent=span.parent, resource=span.resource.attributes,
                    scope=span.instrumentation_scope)
    return view


PARENTS = {
    "root": None,
    "local sampled": SpanContext(0xA1, 0xB1, is_remote=False, trace_flags=TraceFlags(0x03)),
    "local not sampled": SpanContext(0xA2, 0xB2, is_remote=False, trace_flags=TraceFlags(0x00)),
    "remote sampled": SpanContext(0xA3, 0xB3, is_remote=True, trace_flags=TraceFlags(0x01),
                                  trace_state=TraceState([("k", "v")])),
    "remote not sampled": SpanContext(0xA4, 0xB4, is_remote=True, trace_flags=TraceFlags(0x02),
                                      trace_state=TraceState([("q", "w")])),
}
SAMPLERS = {
    "parentbased_always_on": lambda: sampling.ParentBased(sampling.ALWAYS_ON),
    "always_on": lambda: sampling.ALWAYS_ON,
    "always_off": lambda: sampling.ALWAYS_OFF,
    "parentbased_always_off": lambda: sampling.ParentBased(sampling.ALWAYS_OFF),
    "parentbased_traceidratio": lambda: sampling.ParentBased(sampling.TraceIdRatioBased(0.5)),
}


@pytest.mark.parametrize("random_ids", [True, False])
@pytest.mark.parametrize("parent", list(PARENTS))
@pytest.mark.parametrize("sampler", list(SAMPLERS))
def test_the_wrappers_span_start_makes_the_sdks_span(sampler, parent, random_ids):
    sdk_tracer, sdk_seen = _provider(SAMPLERS[sampler](), random_ids)
    our_tracer, our_seen = _provider(SAMPLERS[sampler](), random_ids)
    start = starter(our_tracer, ATTRIBUTES)
    for context in (None, trace.set_span_in_context(NonRecordingSpan(PARENTS[parent])) if PARENTS[parent] else None):
        token = None
        if PARENTS[parent] is not None and context is None:  # the parent as the current context
            from opentelemetry.context import attach

            token = attach(trace.set_span_in_context(NonRecordingSpan(PARENTS[parent])))
        try:
            for kind in (SpanKind.INTERNAL, SpanKind.CLIENT):
                expected = _view(sdk_tracer.start_span("name", context, kind, ATTRIBUTES))
                assert _view(start("name", context, kind)) == expected
        finally:
            if token is not None:
                from opentelemetry.context import detach

                detach(token)
    assert our_seen.started == sdk_seen.started
    assert [_exported(s) for s in our_seen.ended] == [_exported(s) for s in sdk_seen.ended]
    assert len(our_seen.ended) == len(sdk_seen.ended)


def test_attribute_limits_apply_as_the_sdk_applies_them():
    for limits in (SpanLimits(max_span_attribute_length=3), SpanLimits(max_span_attributes=2)):
        sdk_tracer, _ = _provider(sampling.ALWAYS_ON, True, limits)
        our_tracer, _ = _provider(sampling.ALWAYS_ON, True, limits)
        expected = _view(sdk_tracer.start_span("n", None, SpanKind.INTERNAL, ATTRIBUTES))
        assert _view(starter(our_tracer, ATTRIBUTES)("n", None, SpanKind.INTERNAL)) == expected
        assert expected["attributes"] != ATTRIBUTES  # the limits did something


def test_spans_of_a_traced_function_keep_later_attributes_apart():
    """Each span gets its own copy of the cleaned attributes."""
    tracer, seen = _provider(sampling.ALWAYS_ON, True)
    start = starter(tracer, ATTRIBUTES)
    first = start("a", None, SpanKind.INTERNAL)
    first.set_attribute("extra", 1)
    second = start("b", None, SpanKind.INTERNAL)
    assert "extra" not in second.attributes and first.attributes["extra"] == 1
    first.end()
    second.end()
    assert [dict(s.attributes) for s in seen.ended] == [{**first.attributes}, {**second.attributes}]


def test_another_tracer_gets_its_own_start_span():
    calls = []

    class Tracer:
        def start_span(self, *args):
            calls.append(args)
            return "span"

    assert starter(Tracer(), {"a": 1})("n", None, SpanKind.SERVER) == "span"
    assert calls == [("n", None, SpanKind.SERVER, {"a": 1})]


# --- the processor list ---


class Recorder(SpanProcessor):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def on_start(self, span, parent_context=None):
        self.log.append((self.name, "start", span.name, parent_context))

    def _on_ending(self, span):
        self.log.append((self.name, "ending", span.name))

    def on_end(self, span):
        self.log.append((self.name, "end", span.name))

    def shutdown(self):
        self.log.append((self.name, "shutdown"))

    def force_flush(self, timeout_millis=30000):
        self.log.append((self.name, "flush"))
        return True


class EndOnly(SpanProcessor):
    def __init__(self, log):
        self.log = log

    def on_start(self, span, parent_context=None):
        pass

    def on_end(self, span):
        self.log.append(("end-only", "end", span.name))


class DuckTyped:
    """Not a SpanProcessor subclass: every hook is called, as the SDK calls them."""

    def __init__(self, log):
        self.log = log

    def on_start(self, span, parent_context=None):
        self.log.append(("duck", "start", span.name, parent_context))

    def _on_ending(self, span):
        self.log.append(("duck", "ending", span.name))

    def on_end(self, span):
        self.log.append(("duck", "end", span.name))

    def shutdown(self):
        self.log.append(("duck", "shutdown"))

    def force_flush(self, timeout_millis=30000):
        return True


def _run(multi):
    log = []
    provider = TracerProvider(shutdown_on_exit=False, active_span_processor=multi)
    provider.add_span_processor(Recorder("first", log))
    provider.add_span_processor(EndOnly(log))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("outer"):
        provider.add_span_processor(DuckTyped(log))  # added while a span is open: sees its end
        with tracer.start_as_current_span("inner"):
            pass
    provider.force_flush()
    provider.shutdown()
    return log


def test_the_processor_list_calls_what_the_sdks_calls_in_the_same_order():
    lean, stock = _run(LeanMultiSpanProcessor()), _run(SynchronousMultiSpanProcessor())
    assert lean == stock
    assert ("end-only", "end", "inner") in lean and ("duck", "start", "inner", None) in lean


def test_configure_builds_its_provider_on_the_lean_processor_list(tmp_path):
    from support import clean_env, run_python

    result = run_python(
        "import otel_monitoring\n"
        f"m = otel_monitoring.configure(exporter='otlp_file', file_dir={str(tmp_path)!r})\n"
        "print(type(m.tracer_provider._active_span_processor).__name__)\n"
        "m.shutdown()\n", env=clean_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "LeanMultiSpanProcessor"


def _fields(span):
    """A span's fields, its lock and bounded containers by kind and content (never by identity)."""
    def plain(value):
        if hasattr(value, "_dq"):
            return ("list", tuple(value._dq), value._dq.maxlen, value.dropped)
        if hasattr(value, "_dict") and hasattr(value, "_immutable"):
            return ("attributes", dict(value._dict), value.maxlen, value.max_value_len, value.dropped,
                    value._immutable)
        return type(value).__name__ if key in ("_lock", "_start_time", "_end_time") else value

    result = {}
    for key, value in vars(span).items():
        result[key] = plain(value)
    return result


def test_a_span_built_at_once_has_the_fields_the_constructor_gives():
    limits = SpanLimits(max_events=7, max_links=5, max_span_attribute_length=50)
    our_tracer, _ = _provider(sampling.ParentBased(sampling.ALWAYS_ON), True, limits)
    expected = our_tracer.start_span("name", None, SpanKind.CLIENT, ATTRIBUTES)  # the SDK's own way
    built = starter(our_tracer, ATTRIBUTES)("name", None, SpanKind.CLIENT)
    assert {k: v for k, v in _fields(built).items() if k != "_context"} == \
        {k: v for k, v in _fields(expected).items() if k != "_context"}
    assert type(built) is type(expected)
    # Stored in the constructors' order, so the instances share their class's key table (memory).
    for part in ("", "_attributes", "_events", "_links"):
        assert list(vars(getattr(built, part) if part else built)) == \
            list(vars(getattr(expected, part) if part else expected))
    assert built._context.trace_flags == expected._context.trace_flags and built._start_time >= expected._start_time
    for shared in ("_sampler", "_span_processor", "_limits", "_resource", "_instrumentation_scope", "_status"):
        assert getattr(built, shared) is getattr(expected, shared)
    # Each span owns its lock, attributes, events and links.
    other = starter(our_tracer, ATTRIBUTES)("other", None, SpanKind.CLIENT)
    for own in ("_lock", "_attributes", "_events", "_links"):
        assert getattr(built, own) is not getattr(other, own)
    for span in (built, expected):
        span.add_event("e", {"x": 1}, timestamp=1)
        span.add_link(SpanContext(0xA1, 0xB1, is_remote=False), {"y": 2})
        span.record_exception(ValueError("bad"), timestamp=2)
        span.set_attribute("late", "v")
        span.end()
    assert _exported(built) | {"context": None} == _exported(expected) | {"context": None}
    assert not other.events and not other.links and "late" not in other.attributes
    other.end()


def test_an_sdk_with_other_span_fields_gets_the_constructors_span(monkeypatch):
    """The build takes the fields the checked SDK version has; a span with one more falls back."""
    from opentelemetry.sdk.trace import Span

    from otel_monitoring.instrumentation import span_start

    original = Span.__init__

    def init(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._new_field = "x"

    monkeypatch.setattr(Span, "__init__", init)
    tracer, seen = _provider(sampling.ALWAYS_ON, True)
    span = span_start.starter(tracer, ATTRIBUTES)("n", None, SpanKind.INTERNAL)
    assert span._new_field == "x"  # made by the constructor
    span.end()
    assert [s.name for s in seen.ended] == ["n"]
