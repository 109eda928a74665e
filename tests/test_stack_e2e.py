"""End to end: the demo sends OTLP to the real agent collector, which feeds a real Jaeger, a real
Prometheus (scraping its exporter) and its rotated files. One stack is shared by the module."""

from __future__ import annotations

import contextlib
import glob
import html
import json
import os
import re
import subprocess
import sys

import pytest

from stackprocs import (AGENT_CONFIG, CONFIG_DIR, JAEGER_UI_ASSETS, collector_process,  # noqa: F401 (fixture)
                        require_jaeger_ui, start_collector, start_jaeger, start_prometheus, wait_until)
from support import REPO, attributes, clean_env, free_port, read_otlp_file, run_python, spans_from_requests

DEMO_SERVICE = "otel-monitoring-demo"
SECRET_SERVICE = "secret-planter"
SECRET = "s3cr3t-PLANTED-7f4e9a"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("stack")
    prometheus_port = free_port()
    with contextlib.ExitStack() as running:  # stops whatever started, in reverse order, even on failure
        # As `otel-monitoring stack up` runs it: Badger, the UI when its assets are here, span metrics from this Prometheus.
        jaeger = running.enter_context(start_jaeger(root, ui_assets=JAEGER_UI_ASSETS, prometheus=prometheus_port))
        collector = running.enter_context(start_collector(AGENT_CONFIG, root, jaeger_endpoint=jaeger.otlp_grpc_endpoint))
        prometheus = running.enter_context(start_prometheus(root, {
            "otel-collector": [collector.prometheus_target],
            "otel-collector-internal": [collector.telemetry_target],
            "jaeger": [jaeger.telemetry_target]}, prometheus=prometheus_port))
        yield jaeger, collector, prometheus


@pytest.fixture(scope="module")
def demo(stack, tmp_path_factory):
    """Run the demo against the collector, and plant a secret with a plain OTel SDK pipeline."""
    _, collector, _ = stack
    result = subprocess.run(
        [sys.executable, "-m", "otel_monitoring.cli", "demo", "--duration", "4", "--exporter", "otlp",
         "--endpoint", collector.otlp_grpc_endpoint, "--output", str(tmp_path_factory.mktemp("demo-out"))],
        env=clean_env(OTEL_MONITORING_BUDGETS="daily:total=100"), capture_output=True, text=True, timeout=180, cwd=REPO,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    planted = run_python(f"""
        import logging
        from opentelemetry import trace, metrics
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
        from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter

        endpoint = "{collector.otlp_grpc_endpoint}"
        resource = Resource.create({{"service.name": "{SECRET_SERVICE}", "deployment.account_id": "{SECRET}"}})
        tracer_provider = TracerProvider(resource=resource)
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, insecure=True)))
        meter_provider = MeterProvider(resource=resource, metric_readers=[
            PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=endpoint, insecure=True), 60000)])
        logger_provider = LoggerProvider(resource=resource)
        logger_provider.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter(endpoint=endpoint, insecure=True)))
        logger = logging.getLogger("planter")
        logger.addHandler(LoggingHandler(logger_provider=logger_provider))
        logger.setLevel(logging.INFO)

        tracer = tracer_provider.get_tracer("planter")
        with tracer.start_as_current_span("place order", attributes={{
            "exchange.api_key": "{SECRET}",
            "db.password": "{SECRET}",
            "http.request.header.authorization": "Bearer {SECRET}",
            "rpc.request.metadata.forwarded": "Bearer {SECRET}",
            "url.full": "https://api.exchange.test/v3/order?symbol=BTCUSDT&signature={SECRET}",
            "trading.account.id": "{SECRET}",
            "gen_ai.prompt": "my card is {SECRET}",
            "trading.symbol": "BTC/USDT",
        }}) as span:
            span.add_event("gen_ai.content.prompt", {{"gen_ai.prompt": "{SECRET}"}})
            logger.info("calling https://api.exchange.test/v3/order?api_key={SECRET}", extra={{"api_token": "{SECRET}"}})
        meter_provider.get_meter("planter").create_counter("planter.orders").add(1, {{"api_key": "{SECRET}", "side": "buy"}})
        tracer_provider.shutdown(); meter_provider.shutdown(); logger_provider.shutdown()
    """, env=clean_env())
    assert planted.returncode == 0, planted.stderr
    return result



# --- Jaeger's query API (/api/traces JSON) ---

def _tags(span: dict) -> dict:
    return {tag["key"]: tag["value"] for tag in span.get("tags", [])}


def _parent(span: dict) -> str | None:
    for ref in span.get("references", []):
        if ref.get("refType") == "CHILD_OF":
            return ref["spanID"]
    return None


def _descendants(trace: dict, span_id: str) -> list[dict]:
    children: dict[str, list[dict]] = {}
    for span in trace["spans"]:
        children.setdefault(_parent(span), []).append(span)
    found, todo = [], [span_id]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child["spanID"])
    return found


def _demo_traces(jaeger) -> list[dict]:
    return wait_until(lambda: jaeger.traces(DEMO_SERVICE, limit=1000), 30, what="demo traces in Jaeger")


def test_jaeger_has_the_trading_order_with_its_span_tree(stack, demo):
    jaeger = stack[0]
    orders = []
    for trace in _demo_traces(jaeger):
        by_id = {span["spanID"]: span for span in trace["spans"]}
        for span in trace["spans"]:
            if span["operationName"] == "ccxt.create_order" and "trading.order.id" in _tags(span):
                orders.append((trace, by_id, span))
    assert orders, "no ccxt.create_order span with trading.order.id in Jaeger"
    trace, by_id, order = orders[0]
    tags = _tags(order)
    for key in ("trading.exchange", "trading.symbol", "trading.order.side", "trading.order.type", "trading.order.id"):
        assert tags.get(key) not in (None, ""), f"{key} missing on the order span: {tags}"
    assert tags["trading.order.side"] in ("buy", "sell")
    # The order is a step of the bot's tick, and its HTTP call to the exchange is its child.
    parent = by_id.get(_parent(order))
    assert parent is not None and parent["operationName"].startswith("bot.tick")
    http_children = [span for span in _descendants(trace, order["spanID"]) if _tags(span).get("span.kind") == "client"]
    assert http_children, "the order's HTTP request to the exchange is not under it"


def test_a_demo_trace_renders_in_the_jaeger_ui_in_headless_chromium(stack, demo, tmp_path):
    """The trace view of the Jaeger UI (a React application fed by /api/traces), as a person opens it:
    every span of one demo trace shows in the rendered page, with its service."""
    from test_views_top import require_tool

    require_jaeger_ui()
    chromium = require_tool("chromium")
    jaeger = stack[0]
    # A whole order (the bot's tick, the order, its HTTP call): small enough that every row is drawn.
    candidates = [trace for trace in _demo_traces(jaeger)
                  if any(span["operationName"] == "ccxt.create_order" for span in trace["spans"])]
    assert candidates, "no demo trace with an order"
    trace = min(candidates, key=lambda t: len(t["spans"]))
    names = {span["operationName"] for span in trace["spans"]}
    assert 2 <= len(trace["spans"]) <= 40, len(trace["spans"])
    url = f"{jaeger.query_url}/trace/{trace['traceID']}"
    done = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                           "--disable-background-networking", "--disable-component-update", "--disable-sync",
                           f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1600,4000",
                           "--virtual-time-budget=20000", "--dump-dom", url],
                          capture_output=True, text=True, timeout=180)
    dom = done.stdout
    assert "not the Jaeger UI you are looking for" not in dom
    assert 'class="span-name' in dom or "span-name" in dom, dom[-3000:] + done.stderr[-2000:]
    missing = [name for name in names if html.escape(name, quote=False) not in dom]
    assert not missing, f"spans not rendered: {missing}"
    assert DEMO_SERVICE in dom
    assert trace["traceID"][:7] in dom  # the trace header shows the short trace id


def test_jaeger_has_the_rag_query_with_retrieval_embeddings_and_chat(stack, demo):
    jaeger = stack[0]
    for trace in _demo_traces(jaeger):
        for span in trace["spans"]:
            if _parent(span) is not None:
                continue
            operations = {_tags(d).get("gen_ai.operation.name") for d in _descendants(trace, span["spanID"])}
            if {"retrieval", "embeddings", "chat"} <= operations:
                return
    pytest.fail("no trace whose root holds retrieval, embeddings and chat spans in Jaeger")


def test_jaeger_has_an_api_request_from_client_to_server_in_one_trace(stack, demo):
    """The API example's HTTP call: the client span and the FastAPI server span it caused share
    the trace (context propagated over HTTP), and the server span carries its status code."""
    jaeger = stack[0]
    for trace in _demo_traces(jaeger):
        by_id = {span["spanID"]: span for span in trace["spans"]}
        for span in trace["spans"]:
            parent = by_id.get(_parent(span))
            if _tags(span).get("span.kind") == "server" and parent and _tags(parent).get("span.kind") == "client":
                tags = _tags(span)
                if tags.get("http.response.status_code", tags.get("http.status_code")) is not None:
                    return
    pytest.fail("no HTTP server span under its client span in Jaeger")


def test_jaeger_has_an_api_request_containing_retrieval_embeddings_and_chat(stack, demo):
    """POST /ask of the API example: the client span, the FastAPI server span under it, and the
    RAG pipeline's retrieval, embeddings and chat spans under the server span, in one trace."""
    jaeger = stack[0]
    for trace in _demo_traces(jaeger):
        by_id = {span["spanID"]: span for span in trace["spans"]}
        for span in trace["spans"]:
            parent = by_id.get(_parent(span))
            if not (_tags(span).get("span.kind") == "server" and "/ask" in span["operationName"]
                    and parent is not None and _tags(parent).get("span.kind") == "client"):
                continue
            operations = {_tags(d).get("gen_ai.operation.name") for d in _descendants(trace, span["spanID"])}
            if {"retrieval", "embeddings", "chat"} <= operations:
                return
    pytest.fail("no API request trace (client -> server /ask) holding retrieval, embeddings and chat in Jaeger")


def test_prometheus_has_spanmetrics_red_metrics_for_the_demo(stack, demo):
    prometheus = stack[2]
    calls = wait_until(lambda: prometheus.query(
        f'sum by (span_name, status_code) (traces_span_metrics_calls_total{{service_name="{DEMO_SERVICE}"}})'),
        30, what="spanmetrics calls in Prometheus")
    span_names = {sample["metric"]["span_name"] for sample in calls}
    assert "ccxt.create_order" in span_names
    assert any(sample["metric"]["status_code"] == "STATUS_CODE_ERROR" for sample in calls), \
        "the demo's failed orders should count as errors"
    p95 = prometheus.query(
        f'histogram_quantile(0.95, sum by (le) (traces_span_metrics_duration_seconds_bucket{{service_name="{DEMO_SERVICE}"}}))')
    assert p95 and 0 < float(p95[0]["value"][1]) < 60, p95


def test_spanmetrics_exemplars_link_latency_to_traces_in_jaeger(stack, demo):
    jaeger, _, prometheus = stack
    series = f'traces_span_metrics_duration_seconds_bucket{{service_name="{DEMO_SERVICE}"}}'

    def exemplar_trace_ids():
        now = __import__("time").time()
        found = prometheus.api("query_exemplars", query=series, start=str(now - 3600), end=str(now))
        return [exemplar["labels"]["trace_id"] for entry in found for exemplar in entry["exemplars"]
                if "trace_id" in exemplar["labels"]]

    trace_ids = wait_until(exemplar_trace_ids, 30, what="exemplars with trace ids in Prometheus")
    assert any(jaeger.trace(trace_id) for trace_id in trace_ids[:20]), "no exemplar trace id is a trace in Jaeger"


def test_prometheus_has_the_sdks_metrics_for_the_demo(stack, demo):
    prometheus = stack[2]
    names = wait_until(lambda: {
        sample["metric"]["__name__"] for sample in prometheus.query(f'{{job="{DEMO_SERVICE}"}}')
    }, 30, what="SDK metrics in Prometheus")
    # RED metrics of the instrumentation core and the system meters, as Prometheus names them.
    assert any(name.startswith("otel_monitoring_operation_duration_seconds") for name in names), sorted(names)
    assert any(name.startswith("system_") for name in names), sorted(names)


def test_every_metric_the_dashboards_and_stack_rules_use_exists_in_prometheus(stack, demo):
    """The dashboards and stack.yml query names as Prometheus really exposes them (suffixes, units)."""
    prometheus = stack[2]
    used = set()
    for path in glob.glob(os.path.join(CONFIG_DIR, "grafana", "dashboards", "*.json")) + [
            os.path.join(CONFIG_DIR, "prometheus", "rules", "stack.yml")]:
        with open(path, encoding="utf-8") as handle:
            used |= set(re.findall(r"\b([a-zA-Z_][a-zA-Z0-9_]*)[{[]", handle.read()))
    # Counters the collector creates on the first failure or refusal: absent from a healthy stack.
    used -= {"label_values", "otelcol_exporter_send_failed_spans_total", "otelcol_exporter_send_failed_metric_points_total",
             "otelcol_receiver_refused_spans_total"}
    # A stream's rate verdict needs one full rate window (60 s) of messages; the demo runs 4 s.
    used -= {"trading_market_data_below_min_rate_ratio"}
    wait_until(lambda: "otel_monitoring_cost_budget_utilization_ratio" in prometheus.series_names(), 30,
               what="the budget gauges in Prometheus")
    missing = sorted(used - set(prometheus.series_names()))
    assert not missing, f"queried but never exposed: {missing}"


def test_the_file_exporter_holds_spans_metrics_and_logs_as_otlp(stack, demo):
    collector = stack[1]

    def demo_spans():
        requests = read_otlp_file(collector.file("traces"), "traces")
        return [span for resource, _, span in spans_from_requests(requests)
                if attributes(resource.attributes).get("service.name") == DEMO_SERVICE]

    spans = wait_until(demo_spans, 15, what="demo spans in traces.jsonl")
    assert {"ccxt.create_order", "bot.tick"} <= {span.name for span in spans}
    metrics = read_otlp_file(collector.file("metrics"), "metrics")
    metric_names = {metric.name for request in metrics for rm in request.resource_metrics
                    for sm in rm.scope_metrics for metric in sm.metrics}
    assert "traces.span.metrics.calls" in metric_names  # spanmetrics output goes to the files too
    assert any(name.startswith("otel_monitoring.") for name in metric_names), sorted(metric_names)
    logs = read_otlp_file(collector.file("logs"), "logs")
    records = [record for request in logs for rl in request.resource_logs for sl in rl.scope_logs for record in sl.log_records]
    assert records
    assert any(record.trace_id for record in records), "log records carry trace ids"


def _all_file_text(collector) -> str:
    text = []
    for path in glob.glob(os.path.join(collector.data_dir, "*.jsonl*")):
        with open(path, encoding="utf-8", errors="replace") as handle:
            text.append(handle.read())
    return "\n".join(text)


def test_a_planted_secret_reaches_none_of_the_sinks(stack, demo):
    jaeger, collector, prometheus = stack
    # The planted telemetry did arrive everywhere, minus the secrets.
    traces = wait_until(lambda: jaeger.traces(SECRET_SERVICE), 30, what="the planted trace in Jaeger")
    span = traces[0]["spans"][0]
    tags = _tags(span)
    assert tags["trading.symbol"] == "BTC/USDT"
    assert "signature=REDACTED" in tags["url.full"]
    assert tags["rpc.request.metadata.forwarded"] == "Bearer REDACTED"  # secret value under an innocent key
    for key in ("exchange.api_key", "db.password", "http.request.header.authorization", "trading.account.id", "gen_ai.prompt"):
        assert key not in tags
    wait_until(lambda: prometheus.query(f'planter_orders_total{{job="{SECRET_SERVICE}"}}'), 30,
               what="the planted metric in Prometheus")
    wait_until(lambda: SECRET_SERVICE in _all_file_text(collector) and "api_key=REDACTED" in _all_file_text(collector),
               15, what="the planted span and log in the files")

    jaeger_text = json.dumps(traces)
    assert SECRET not in jaeger_text
    prometheus_text = json.dumps(prometheus.api("series", **{"match[]": f'{{job="{SECRET_SERVICE}"}}'})) \
        + json.dumps(prometheus.query('target_info')) + collector.exported_metrics()
    assert SECRET not in prometheus_text
    assert SECRET not in _all_file_text(collector)


def test_content_redaction_can_be_switched_off(tmp_path):
    """OTELCOL_REDACT_CONTENT=false keeps prompts (explicit content capture) but still drops keys."""
    collector = start_collector(AGENT_CONFIG, tmp_path, env={"OTELCOL_REDACT_CONTENT": "false"})
    try:
        result = run_python(f"""
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import SimpleSpanProcessor
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
            provider = TracerProvider(resource=Resource.create({{"service.name": "content"}}))
            provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint="{collector.otlp_grpc_endpoint}", insecure=True)))
            with provider.get_tracer("t").start_as_current_span("chat", attributes={{"gen_ai.prompt": "hello", "api_key": "k"}}):
                pass
            provider.shutdown()
        """)
        assert result.returncode == 0, result.stderr

        def planted():
            spans = [s for _, _, s in spans_from_requests(read_otlp_file(collector.file("traces"), "traces"))]
            return spans and attributes(spans[0].attributes)

        attrs = wait_until(planted, 15, what="the span in traces.jsonl")
        assert attrs.get("gen_ai.prompt") == "hello"
        assert "api_key" not in attrs
    finally:
        collector.stop()


def test_health_probe_spans_are_filtered_out(collector_process):  # noqa: F811 - the fixture imported above
    result = run_python(f"""
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import SimpleSpanProcessor
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.trace import SpanKind
        provider = TracerProvider(resource=Resource.create({{"service.name": "probed"}}))
        provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint="{collector_process.otlp_grpc_endpoint}", insecure=True)))
        tracer = provider.get_tracer("t")
        for route in ("/health", "/orders"):
            with tracer.start_as_current_span(f"GET {{route}}", kind=SpanKind.SERVER, attributes={{"http.route": route}}):
                pass
        provider.shutdown()
    """)
    assert result.returncode == 0, result.stderr
    names = wait_until(lambda: {s.name for _, _, s in spans_from_requests(read_otlp_file(collector_process.file("traces"), "traces"))},
                       15, what="spans in traces.jsonl")
    assert names == {"GET /orders"}
