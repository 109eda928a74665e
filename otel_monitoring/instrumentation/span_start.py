"""Starting the wrapper's spans for less than the SDK's ``Tracer.start_span`` costs.

For each span, ``Tracer.start_span`` asks the sampler (a ``SamplingResult`` and a read-only copy
of the attributes), builds trace flags, then ``Span.__init__`` cleans every attribute value again
(type checks, tuple copies, length limits). A wrapped function starts its spans with the same
attributes every call, so those can be cleaned once. ``starter()`` returns a function making the
very span the SDK would make (same class, context, flags, trace state, attributes, processors'
``on_start``), taking the short way only where the outcome is known without the sampler: the
default ``parentbased_always_on`` and ``always_on`` samplers deciding to sample. Every other case
(another sampler, a parent not sampled, a disabled tracer, attributes over the limits, a tracer
that is not the SDK's) goes through ``tracer.start_span`` unchanged.

The short way also builds the span's fields at once instead of through the constructors
(``Span.__init__`` -> ``ReadableSpan.__init__``, ``BoundedAttributes``, two ``BoundedList``,
``start()``): a fresh ``_Span`` gets the fields a span made by the SDK's constructor with this
tracer has, shared ones taken from such a span made once, per-span ones (attributes, events,
links, lock) new. That span is checked field by field when the starter is made: an SDK whose
spans have other fields takes the constructor path.
"""

from __future__ import annotations

from collections import deque
from threading import Lock
from time import time_ns
from typing import Any, Callable, Mapping

from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanContext, SpanKind, TraceFlags, get_current_span

__all__ = ["starter"]

StartSpan = Callable[..., Any]


def _generic(tracer: Any, attributes: Mapping[str, Any]) -> StartSpan:
    start_span = tracer.start_span

    def start(name: str, context: Any, kind: SpanKind, current: Any = None) -> Any:
        return start_span(name, context, kind, attributes)

    return start


def _always_samples(sampler: Any) -> tuple[bool, bool] | None:
    """(roots sampled, every parent's decision ignored) for the samplers whose sampled outcome is
    known without asking them; None for any other sampler."""
    from opentelemetry.sdk.trace import sampling

    if sampler is sampling.ALWAYS_ON:
        return True, True
    if (type(sampler) is sampling.ParentBased and sampler._root is sampling.ALWAYS_ON
            and sampler._remote_parent_sampled is sampling.ALWAYS_ON
            and sampler._local_parent_sampled is sampling.ALWAYS_ON
            and sampler._remote_parent_not_sampled is sampling.ALWAYS_OFF
            and sampler._local_parent_not_sampled is sampling.ALWAYS_OFF):
        return True, False
    return None


# The fields of the SDK's spans, attribute sets and bounded lists (SDK 1.45): a span built at once
# must have exactly these, else the starter takes the constructors.
_SPAN_FIELDS = frozenset({
    "_attributes", "_context", "_end_time", "_events", "_instrumentation_info", "_instrumentation_scope", "_kind",
    "_limits", "_links", "_lock", "_name", "_parent", "_record_end_metrics", "_record_exception", "_resource",
    "_sampler", "_set_status_on_exception", "_span_processor", "_start_time", "_status", "_trace_config"})
_ATTRIBUTES_FIELDS = frozenset({"_dict", "_immutable", "_lock", "dropped", "max_value_len", "maxlen"})
_LIST_FIELDS = frozenset({"_dq", "_lock", "dropped"})


def _builder(prototype: Any, clean: dict, span_class: type, span_base: type) -> Callable[..., Any] | None:
    """``build(name, context, parent, kind, end_metrics)``: a started span with the fields ``prototype``
    (a span the SDK's constructor made with the tracer's settings and ``clean`` attributes) has; None
    when the SDK's spans are not made of the fields this knows."""
    attributes, events, links = prototype._attributes, prototype._events, prototype._links
    if (set(vars(prototype)) != _SPAN_FIELDS or type(attributes) is not BoundedAttributes
            or set(vars(attributes)) != _ATTRIBUTES_FIELDS or type(attributes._dict) is not dict
            or attributes._dict != clean or attributes.dropped or attributes._immutable
            or type(events) is not BoundedList or type(links) is not BoundedList
            or set(vars(events)) != _LIST_FIELDS or set(vars(links)) != _LIST_FIELDS
            or events.dropped or links.dropped or len(events) or len(links)
            or span_class.start is not span_base.start or span_class.__init__ is not span_base.__init__
            or prototype._start_time is not None or prototype._end_time is not None):
        return None
    shared = vars(prototype)
    info, scope, resource, status = (shared["_instrumentation_info"], shared["_instrumentation_scope"],
                                     shared["_resource"], shared["_status"])
    sampler, trace_config, record_exception, set_status = (shared["_sampler"], shared["_trace_config"],
                                                           shared["_record_exception"],
                                                           shared["_set_status_on_exception"])
    processor, limits = shared["_span_processor"], shared["_limits"]
    maxlen, max_value_len = attributes.maxlen, attributes.max_value_len
    max_events, max_links = events._dq.maxlen, links._dq.maxlen
    new = object.__new__

    # Fields stored one by one in the order the constructors store them: the instances then share
    # their class's key table as constructed ones do (a dict assigned whole costs ~700 bytes a span).
    def build(name: str, context: Any, parent: Any, kind: SpanKind, end_metrics: Any) -> Any:
        span_attributes = new(BoundedAttributes)
        span_attributes._dict = clean.copy()
        span_attributes.maxlen = maxlen
        span_attributes.dropped = 0
        span_attributes.max_value_len = max_value_len
        span_attributes._lock = Lock()
        span_attributes._immutable = False
        span_events = new(BoundedList)
        span_events.dropped = 0
        span_events._dq = deque((), max_events)
        span_events._lock = Lock()
        span_links = new(BoundedList)
        span_links.dropped = 0
        span_links._dq = deque((), max_links)
        span_links._lock = Lock()
        span = new(span_class)
        span._name = name
        span._context = context
        span._kind = kind
        span._instrumentation_info = info
        span._instrumentation_scope = scope
        span._parent = parent
        span._start_time = time_ns()
        span._end_time = None
        span._attributes = span_attributes
        span._events = span_events
        span._links = span_links
        span._resource = resource
        span._status = status
        span._sampler = sampler
        span._trace_config = trace_config
        span._record_exception = record_exception
        span._set_status_on_exception = set_status
        span._span_processor = processor
        span._limits = limits
        span._lock = Lock()
        span._record_end_metrics = end_metrics
        return span

    return build


def starter(tracer: Any, attributes: Mapping[str, Any]) -> StartSpan:
    """``start(name, context, kind, current=None)``: ``tracer.start_span(name, context, kind, attributes)``.

    ``current``, when the caller has it at hand, is the current context (read instead of reading it
    again when ``context`` is None)."""
    try:
        from opentelemetry.sdk.trace import Span as SdkSpan
        from opentelemetry.sdk.trace import Tracer, _Span
        from opentelemetry.sdk.trace.sampling import Decision

        if type(tracer) is not Tracer or not issubclass(_Span, SdkSpan):
            return _generic(tracer, attributes)
        known = _always_samples(tracer.sampler)
        limits = tracer._span_limits
        cleaned = BoundedAttributes(limits.max_span_attributes, attributes, immutable=False,
                                    max_value_len=limits.max_span_attribute_length)
        if known is None or cleaned.dropped or len(cleaned._dict) != len(attributes):
            return _generic(tracer, attributes)
        clean = dict(cleaned._dict)
        # What every span shares, read once (the SDK's tracer keeps them for its lifetime).
        sampler, resource, processor = tracer.sampler, tracer.resource, tracer.span_processor
        info, scope, ids, metrics = (tracer.instrumentation_info, tracer._instrumentation_scope,
                                     tracer.id_generator, tracer._tracer_metrics)
        config_holder = tracer
        record_and_sample = Decision.RECORD_AND_SAMPLE
        prototype = _Span(name="", context=SpanContext(1, 1, is_remote=False), parent=None, sampler=sampler,
                          resource=resource, span_processor=processor, kind=SpanKind.INTERNAL,
                          instrumentation_info=info, limits=limits, instrumentation_scope=scope, attributes=clean,
                          record_end_metrics=None)
        build = _builder(prototype, clean, _Span, SdkSpan)
    except Exception:  # noqa: BLE001 - an SDK without these internals: its own path
        return _generic(tracer, attributes)

    ignore_parent = known[1]
    generic = _generic(tracer, attributes)
    sampled = TraceFlags(TraceFlags.SAMPLED)
    sampled_random = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
    on_start = processor.on_start

    def start(name: str, context: Any, kind: SpanKind, current: Any = None) -> Any:
        if not config_holder._tracer_config.is_enabled:
            return generic(name, context, kind)
        parent = get_current_span(current if context is None else context).get_span_context()
        if type(parent) is not SpanContext:
            return generic(name, context, kind)
        if parent.is_valid:
            parent_flags = parent.trace_flags
            if not (ignore_parent or parent_flags & TraceFlags.SAMPLED):
                return generic(name, context, kind)  # not sampled: the sampler's own answer
            trace_id = parent.trace_id
            flags = sampled_random if parent_flags & TraceFlags.RANDOM_TRACE_ID else sampled
            # parentbased and always_on both hand the parent's trace state on
            trace_state = parent.trace_state
        else:
            parent = None
            trace_id = ids.generate_trace_id()
            flags = sampled_random if ids.is_trace_id_random() else sampled
            trace_state = None
        span_context = SpanContext(trace_id, ids.generate_span_id(), is_remote=False, trace_flags=flags,
                                   trace_state=trace_state)
        end_metrics = metrics.start_span(parent, record_and_sample)
        if build is not None:
            span = build(name, span_context, parent, kind, end_metrics)
            on_start(span, parent_context=context)  # what ``Span.start`` does once the time is set
            return span
        span = _Span(name=name, context=span_context, parent=parent, sampler=sampler, resource=resource,
                     span_processor=processor, kind=kind, instrumentation_info=info, limits=limits,
                     instrumentation_scope=scope, record_end_metrics=end_metrics)
        span._attributes._dict.update(clean)  # cleaned once; the SDK would clean the same values again
        span.start(parent_context=context)
        return span

    return start
