"""Cost per root operation: every priced call under one root (an API request, a RAG query) is summed
and recorded once when the root ends, by route or span name; users only through the opt-in attribute."""

from __future__ import annotations

from decimal import Decimal

import pytest
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from otel_monitoring.meters.cost import CostMeter
from otel_monitoring.meters.cost_processor import CostSpanProcessor
from otel_monitoring.meters.prices import load_prices

MILLION = Decimal(1_000_000)


def chat(tracer, model, input_tokens, output_tokens):
    with tracer.start_as_current_span(f"chat {model}", kind=SpanKind.CLIENT, attributes={
            "gen_ai.operation.name": "chat", "gen_ai.request.model": model,
            "gen_ai.usage.input_tokens": input_tokens, "gen_ai.usage.output_tokens": output_tokens}):
        pass


def per_operation(telemetry):
    return {tuple(sorted(p.attributes.items())): (p.count, Decimal(repr(p.sum)))
            for p in telemetry.metrics().get("otel_monitoring.cost.per_operation", [])}


@pytest.fixture
def tracer(telemetry):
    meter = CostMeter(telemetry.meter_provider, load_prices(), user_attribute="tenant.id")
    telemetry.tracer_provider.add_span_processor(CostSpanProcessor(meter, user_attribute="tenant.id"))
    return telemetry.tracer_provider.get_tracer("test")


def test_requests_are_summed_per_route_when_the_root_ends(telemetry, tracer):
    prices = load_prices().llm
    for done in range(2):
        with tracer.start_as_current_span("POST /ask", kind=SpanKind.SERVER,
                                          attributes={"http.request.method": "POST", "http.route": "/ask"}):
            with tracer.start_as_current_span("chain rag"):
                chat(tracer, "gpt-4o-mini", 1000, 200)
                chat(tracer, "gpt-4o", 500, 100)
            # The request in flight is not recorded before its root ends; the finished ones are.
            assert sum(count for count, _ in per_operation(telemetry).values()) == done
    one = ((1000 * prices["gpt-4o-mini"].input + 200 * prices["gpt-4o-mini"].output)
           + (500 * prices["gpt-4o"].input + 100 * prices["gpt-4o"].output)) / MILLION
    (count, total), = per_operation(telemetry).values()
    assert list(per_operation(telemetry)) == [(("operation", "POST /ask"),)]
    assert count == 2
    assert float(total) == pytest.approx(float(2 * one), rel=1e-12)


def test_a_root_without_route_is_named_by_its_span_and_unpriced_roots_record_nothing(telemetry, tracer):
    with tracer.start_as_current_span("nightly-summary"):
        chat(tracer, "gpt-4o-mini", 100, 10)
    with tracer.start_as_current_span("GET /healthz", kind=SpanKind.SERVER):
        pass
    assert list(per_operation(telemetry)) == [(("operation", "nightly-summary"),)]


def test_root_under_a_remote_parent_and_the_opt_in_tenant(telemetry, tracer):
    remote = trace.SpanContext(trace_id=0x1234, span_id=0x99, is_remote=True,
                               trace_flags=trace.TraceFlags(trace.TraceFlags.SAMPLED))
    context = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    with tracer.start_as_current_span("rag query", context=context, attributes={"tenant.id": "acme"}):
        chat(tracer, "gpt-4o-mini", 1000, 0)
    price = load_prices().llm["gpt-4o-mini"].input * 1000 / MILLION
    ((key, (count, total)),) = per_operation(telemetry).items()
    assert key == (("operation", "rag query"), ("tenant.id", "acme"))
    assert (count, total) == (1, price)
