"""API: FastAPI under uvicorn on 127.0.0.1, called with requests and httpx, through the contrib
instrumentations that ApiInstrumentor enables: one trace from client to server, health probes excluded."""

from __future__ import annotations

import os

import httpx
import pytest
import requests
from opentelemetry.trace import SpanKind

from otel_monitoring.config import load_settings
from otel_monitoring.instrumentation.api import ApiInstrumentor


@pytest.fixture
def api(telemetry):
    ApiInstrumentor().instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider,
                                 settings=load_settings())
    from otel_monitoring_examples.api_service import ApiServer, create_app

    server = ApiServer(create_app()).start()  # the app is created after instrument(), as in an application
    yield server
    server.stop()
    ApiInstrumentor().uninstrument()
    os.environ.pop("OTEL_PYTHON_EXCLUDED_URLS", None)  # set by instrument() for httpx


def test_client_and_server_share_one_trace(telemetry, api):
    assert requests.get(f"{api.url}/quotes/BTC-USDT", timeout=5).json()["symbol"] == "BTC-USDT"
    with httpx.Client() as client:
        assert client.post(f"{api.url}/orders", json={"symbol": "BTC-USDT", "amount": 1}).status_code == 200
        assert client.get(f"{api.url}/health").status_code == 200
    telemetry.tracer_provider.force_flush()
    spans = telemetry.spans()
    servers = {s.name: s for s in spans if s.kind is SpanKind.SERVER}
    clients = [s for s in spans if s.kind is SpanKind.CLIENT]
    assert set(servers) == {"GET /quotes/{symbol}", "POST /orders"}  # /health is not traced
    assert len(clients) == 2
    for client_span in clients:
        server_span = servers["GET /quotes/{symbol}" if client_span.name == "GET" else "POST /orders"]
        assert server_span.context.trace_id == client_span.context.trace_id
        assert server_span.parent.span_id == client_span.context.span_id
    # The app's own traced step is a child of the server span.
    (step,) = [s for s in spans if s.name == "quotes.price_with_spread"]
    assert step.parent.span_id == servers["GET /quotes/{symbol}"].context.span_id
    assert not [s for s in spans if s.name.endswith((" http send", " http receive"))]
    metrics = telemetry.metrics()
    assert "http.server.request.duration" in metrics or "http.server.duration" in metrics


def test_disabled_contrib_instrumentations_are_left_alone(telemetry):
    settings = load_settings({"disabled_instrumentations": "requests,fastapi"})
    ApiInstrumentor().instrument(tracer_provider=telemetry.tracer_provider, settings=settings)
    try:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.instrumentation.requests import RequestsInstrumentor

        assert not RequestsInstrumentor().is_instrumented_by_opentelemetry
        assert not FastAPIInstrumentor().is_instrumented_by_opentelemetry
        assert HTTPXClientInstrumentor().is_instrumented_by_opentelemetry
    finally:
        ApiInstrumentor().uninstrument()
        os.environ.pop("OTEL_PYTHON_EXCLUDED_URLS", None)
