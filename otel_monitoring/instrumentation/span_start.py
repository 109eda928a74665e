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
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

from opentelemetry.attributes import BoundedAttributes
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
    except Exception:  # noqa: BLE001 - an SDK without these internals: its own path
        return _generic(tracer, attributes)

    ignore_parent = known[1]
    generic = _generic(tracer, attributes)
    sampled = TraceFlags(TraceFlags.SAMPLED)
    sampled_random = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
    record_and_sample = Decision.RECORD_AND_SAMPLE

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
        span = _Span(name=name, context=span_context, parent=parent, sampler=sampler, resource=resource,
                     span_processor=processor, kind=kind, instrumentation_info=info, limits=limits,
                     instrumentation_scope=scope,
                     record_end_metrics=metrics.start_span(parent, record_and_sample))
        span._attributes._dict.update(clean)  # cleaned once; the SDK would clean the same values again
        span.start(parent_context=context)
        return span

    return start
