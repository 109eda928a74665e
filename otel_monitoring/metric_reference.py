"""Every metric the package and its collector emit: name, instrument, unit, attributes and source.

``docs/metrics.md`` is generated from ``METRICS`` (``python -m otel_monitoring.metric_reference >
docs/metrics.md``), and the ground-truth suite checks the table against what a known workload
really produced (names, instruments, units, attribute keys), so the reference cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["METRICS", "MetricDoc", "markdown"]


@dataclass(frozen=True)
class MetricDoc:
    name: str
    instrument: str          # counter, updowncounter, gauge, histogram (as exported)
    unit: str
    attributes: tuple[str, ...]
    source: str              # the module or library that records it
    description: str
    prometheus: str = ""     # the name Prometheus shows, when it is not derived from the name

    @property
    def prometheus_name(self) -> str:
        if self.prometheus:
            return self.prometheus
        # The collector's Prometheus naming: UCUM units as words, "1" as _ratio on gauges only,
        # annotations ({call}) dropped, other units kept as they are.
        if self.unit == "1":
            suffix = "_ratio" if self.instrument == "gauge" else ""
        elif self.unit.startswith("{") or not self.unit:
            suffix = ""
        else:
            suffix = "_" + {"s": "seconds", "By": "bytes"}.get(self.unit, self.unit)
        base = self.name.replace(".", "_")
        base += "" if base.endswith(suffix) else suffix  # the exporter does not repeat a unit
        return base + "_total" if self.instrument == "counter" else base


RED = ("domain", "component", "operation", "outcome", "error.type", "gen_ai.operation.name", "gen_ai.provider.name",
       "gen_ai.request.model", "trading.exchange", "trading.order.side")
GENAI = ("gen_ai.operation.name", "gen_ai.provider.name", "gen_ai.request.model", "error.type")
BUDGET = ("otel_monitoring.budget.name", "otel_monitoring.budget.period")
FILESYSTEM = ("system.device", "system.filesystem.mountpoint", "system.filesystem.type", "system.filesystem.mode")
HTTP_SERVER = ("http.request.method", "http.route", "http.response.status_code", "error.type", "url.scheme",
               "network.protocol.version", "server.address", "server.port")
HTTP_CLIENT = ("http.request.method", "http.response.status_code", "error.type", "server.address", "server.port",
               "network.protocol.version", "url.scheme")
CONTRIB_SYSTEM = "opentelemetry-instrumentation-system-metrics (lean default set, docs/meters.md)"
FEED = ("trading.exchange", "trading.market_data.channel", "trading.symbol")
CCXT_FEEDS = "otel_monitoring.instrumentation.trading.ccxt (ccxt.pro watch_*)"
CCXT_ORDERS = "otel_monitoring.instrumentation.trading.ccxt (order lifecycle)"
SPANMETRICS = "collector: span_metrics connector (collector-config/agent.yaml)"
SPANMETRICS_DIMENSIONS = ("service.name", "span.name", "span.kind", "status.code", "http.request.method",
                          "http.response.status_code", "gen_ai.operation.name", "trading.exchange", "error.type")

METRICS: tuple[MetricDoc, ...] = (
    # --- RED of every instrumented call ---
    MetricDoc("otel_monitoring.operation.duration", "histogram", "s", RED, "otel_monitoring.instrumentation.core",
              "Duration of each instrumented call (the span's own duration)."),
    MetricDoc("otel_monitoring.operation.calls", "counter", "{call}", RED, "otel_monitoring.instrumentation.core",
              "Instrumented calls, by outcome."),
    MetricDoc("otel_monitoring.operation.errors", "counter", "{error}", RED, "otel_monitoring.instrumentation.core",
              "Instrumented calls that raised, by error.type."),
    # --- GenAI semantic conventions ---
    MetricDoc("gen_ai.client.operation.duration", "histogram", "s", GENAI, "otel_monitoring.instrumentation.rag",
              "GenAI operation duration (chat, embeddings, retrieval); the same calls as the RED histogram."),
    MetricDoc("gen_ai.client.token.usage", "histogram", "{token}", (*GENAI, "gen_ai.token.type"),
              "otel_monitoring.instrumentation.rag", "Tokens per call, input and output apart (gen_ai.token.type)."),
    # --- HTTP (FastAPI's own telemetry, or the contrib instrumentations, stable conventions) ---
    MetricDoc("http.server.request.duration", "histogram", "s", HTTP_SERVER,
              "FastAPI's own telemetry (or opentelemetry-instrumentation-fastapi)", "HTTP server request duration."),
    MetricDoc("http.server.active_requests", "updowncounter", "{request}", ("http.request.method", "url.scheme",
              "server.address", "server.port"), "FastAPI's own telemetry (or opentelemetry-instrumentation-fastapi)",
              "HTTP server requests in flight."),
    MetricDoc("http.client.request.duration", "histogram", "s", HTTP_CLIENT,
              "opentelemetry-instrumentation-requests / -httpx / -aiohttp-client",
              "Outgoing HTTP request duration (the library times the send inside its span)."),
    # --- trading ---
    MetricDoc("trading.market_data.age", "histogram", "s", ("trading.exchange", "trading.market_data.type"),
              "otel_monitoring.instrumentation.trading.ccxt", "Age of market data when received."),
    MetricDoc("trading.market_data.staleness", "gauge", "s", ("trading.symbol", "trading.exchange"),
              "otel_monitoring.meters.trading", "Seconds since the symbol's last market-data update (one series per symbol)."),
    MetricDoc("trading.market_data.status", "gauge", "1", ("trading.symbol", "trading.exchange",
              "trading.market_data.state"), "otel_monitoring.meters.trading", "1 for the symbol's current state."),
    MetricDoc("trading.signals", "counter", "{signal}", ("trading.strategy", "trading.symbol", "trading.signal.direction"),
              "otel_monitoring.meters.trading", "Trading signals generated."),
    MetricDoc("trading.signal.outcomes", "counter", "{signal}", ("trading.strategy", "trading.symbol",
              "trading.signal.outcome"), "otel_monitoring.meters.trading", "Signals judged correct or incorrect."),
    MetricDoc("trading.signal.accuracy", "gauge", "1", ("trading.strategy",), "otel_monitoring.meters.trading",
              "Correct / judged signals over the KPI window."),
    MetricDoc("trading.trades", "counter", "{trade}", ("trading.strategy", "trading.symbol", "trading.trade.outcome"),
              "otel_monitoring.meters.trading", "Closed trades by outcome."),
    MetricDoc("trading.pnl.realized", "updowncounter", "USD", ("trading.strategy", "trading.symbol"),
              "otel_monitoring.meters.trading", "Realized PnL."),
    MetricDoc("trading.pnl.unrealized", "gauge", "USD", ("trading.strategy", "trading.symbol"),
              "otel_monitoring.meters.trading", "Unrealized PnL."),
    MetricDoc("trading.exposure", "gauge", "USD", ("trading.strategy", "trading.symbol"),
              "otel_monitoring.meters.trading", "Open position value."),
    MetricDoc("trading.win_rate", "gauge", "1", ("trading.strategy",), "otel_monitoring.meters.trading",
              "Winning / (winning + losing) trades."),
    MetricDoc("trading.profit_factor", "gauge", "1", ("trading.strategy",), "otel_monitoring.meters.trading",
              "Gross profit / gross loss (once there is a loss)."),
    MetricDoc("trading.order.slippage", "histogram", "{bp}", ("trading.exchange", "trading.symbol", "trading.order.side",
              "trading.slippage.direction"), "otel_monitoring.meters.trading", "Fill distance from the expected price."),
    MetricDoc("trading.order.fill_ratio", "histogram", "1", ("trading.exchange", "trading.symbol"),
              "otel_monitoring.meters.trading", "Filled / ordered amount per order."),
    MetricDoc("trading.signal.cost", "counter", "USD", ("trading.strategy",), "otel_monitoring.meters.trading",
              "Cost of the orders and paid calls in signals' traces; / trading.signals is the cost per signal."),
    # --- trading: WebSocket feeds and the order lifecycle (ccxt.pro) ---
    MetricDoc("trading.market_data.messages", "counter", "{message}", FEED, CCXT_FEEDS,
              "WebSocket messages received through watch_* calls, per stream."),
    MetricDoc("trading.market_data.latency", "histogram", "s", FEED, CCXT_FEEDS,
              "Receipt time of a message minus the exchange's timestamp on it."),
    MetricDoc("trading.market_data.interval", "histogram", "s", FEED, CCXT_FEEDS,
              "Time between two messages of one stream."),
    MetricDoc("trading.market_data.gaps", "counter", "{gap}", FEED, CCXT_FEEDS,
              "Pauses in a stream far above its usual interval."),
    MetricDoc("trading.market_data.rate", "gauge", "{message}/s", FEED, CCXT_FEEDS,
              "Messages per second of a stream over the last minute."),
    MetricDoc("trading.market_data.below_min_rate", "gauge", "1", FEED, CCXT_FEEDS,
              "1 while a stream with a configured minimum rate is under it."),
    MetricDoc("trading.websocket.connections", "updowncounter", "{connection}", ("trading.exchange",), CCXT_FEEDS,
              "Open WebSocket connections."),
    MetricDoc("trading.websocket.reconnects", "counter", "{reconnect}", ("trading.exchange", "trading.websocket.reason"),
              CCXT_FEEDS, "Connections opened again after a drop, by the drop's reason."),
    MetricDoc("trading.websocket.disconnects", "counter", "{disconnect}", ("trading.exchange",
              "trading.websocket.reason"), CCXT_FEEDS, "Connections dropped (not closed by the application)."),
    MetricDoc("trading.websocket.errors", "counter", "{error}", (*FEED, "error.type"), CCXT_FEEDS,
              "watch_* calls that raised, by ccxt error class."),
    MetricDoc("trading.orders.placed", "counter", "{order}", ("trading.exchange",), CCXT_ORDERS,
              "Orders the exchange accepted (create_order)."),
    MetricDoc("trading.orders.filled", "counter", "{order}", ("trading.exchange",), CCXT_ORDERS,
              "Placed orders seen fully filled."),
    MetricDoc("trading.order.partial_fills", "counter", "{fill}", ("trading.exchange",), CCXT_ORDERS,
              "Updates that filled part of an order."),
    MetricDoc("trading.order.fill_time", "histogram", "s", ("trading.exchange",), CCXT_ORDERS,
              "From create_order to the update that shows the order filled."),
    MetricDoc("trading.order.success_rate", "gauge", "1", ("trading.exchange",), CCXT_ORDERS,
              "Filled / placed orders per exchange since the start."),
    # --- RAG ---
    MetricDoc("rag.retrievals", "counter", "{retrieval}", ("rag.collection", "rag.retrieval.outcome"),
              "otel_monitoring.meters.rag", "Retrievals by outcome (hit, miss, empty)."),
    MetricDoc("rag.retrieval.hit_rate", "gauge", "1", ("rag.collection",), "otel_monitoring.meters.rag",
              "Hits / retrievals over the KPI window."),
    MetricDoc("rag.retrieval.empty_rate", "gauge", "1", ("rag.collection",), "otel_monitoring.meters.rag",
              "Empty results / retrievals over the KPI window."),
    MetricDoc("rag.retrieval.relevance", "histogram", "1", ("rag.collection",), "otel_monitoring.meters.rag",
              "Best relevance score of each retrieval."),
    MetricDoc("otel_monitoring.vector_store.vectors", "gauge", "{vector}", ("db.system.name",
              "db.collection.name"), "otel_monitoring.instrumentation.rag.vector_counts",
              "Vectors per collection."),
    # --- cost and budgets ---
    MetricDoc("otel_monitoring.cost", "counter", "USD", ("cost.type", "cost.category", "gen_ai.request.model",
              "gen_ai.token.type", "gen_ai.provider.name", "trading.exchange", "server.address"),
              "otel_monitoring.meters.cost", "Money spent, by cost type (model tokens input and output apart)."),
    MetricDoc("otel_monitoring.cost.per_operation", "histogram", "USD", ("operation", "user.id", "tenant.id"),
              "otel_monitoring.meters.cost", "Cost of the paid calls under one root operation (an API request, a "
              "RAG query), recorded when it ends; plus the configured cost attribute (cost_attribute)."),
    MetricDoc("otel_monitoring.cost.unpriced", "counter", "{event}", ("cost.type", "otel_monitoring.cost.unpriced.reason",
              "gen_ai.request.model", "trading.exchange", "server.address"), "otel_monitoring.meters.cost",
              "Costs that could not be priced: never a silent zero."),
    MetricDoc("otel_monitoring.cost.budget.utilization", "gauge", "1", BUDGET, "otel_monitoring.meters.budgets",
              "Spent / limit in the current period."),
    MetricDoc("otel_monitoring.cost.budget.spent", "gauge", "USD", BUDGET, "otel_monitoring.meters.budgets",
              "Spent in the current period."),
    MetricDoc("otel_monitoring.cost.budget.limit", "gauge", "USD", BUDGET, "otel_monitoring.meters.budgets",
              "The budget's limit."),
    # --- health ---
    MetricDoc("otel_monitoring.health.check.status", "gauge", "1", ("otel_monitoring.health.check.name",),
              "otel_monitoring.meters.health_checks", "1 if the check passed on its last run."),
    MetricDoc("otel_monitoring.health.check.duration", "histogram", "s", ("otel_monitoring.health.check.name",),
              "otel_monitoring.meters.health_checks", "Time one health check took."),
    MetricDoc("otel_monitoring.host.health.score", "gauge", "{score}", (), "otel_monitoring.meters.host_health",
              "Host health 0-100."),
    MetricDoc("otel_monitoring.host.health.status", "gauge", "1", ("otel_monitoring.host.health.state",),
              "otel_monitoring.meters.host_health", "1 for the current host health state."),
    MetricDoc("otel_monitoring.host.resource.utilization", "gauge", "1", ("otel_monitoring.host.resource",),
              "otel_monitoring.meters.host_health", "CPU busy, memory used and fullest-disk fractions."),
    # --- local alerting ---
    MetricDoc("otel_monitoring.alert.notifications", "counter", "{notification}", ("channel", "outcome"),
              "otel_monitoring.local.notifier", "Alert notifications by channel and outcome."),
    # --- system and process (ours) ---
    MetricDoc("system.filesystem.usage", "updowncounter", "By", (*FILESYSTEM, "system.filesystem.state"),
              "otel_monitoring.meters.system", "Filesystem bytes by state."),
    MetricDoc("system.filesystem.utilization", "gauge", "1", FILESYSTEM, "otel_monitoring.meters.system",
              "Used / (used + free), as df shows it."),
    MetricDoc("system.cpu.load_average.1m", "gauge", "{thread}", (), "otel_monitoring.meters.system", "Load average, 1 minute."),
    MetricDoc("system.cpu.load_average.5m", "gauge", "{thread}", (), "otel_monitoring.meters.system", "Load average, 5 minutes."),
    MetricDoc("system.cpu.load_average.15m", "gauge", "{thread}", (), "otel_monitoring.meters.system", "Load average, 15 minutes."),
    MetricDoc("system.uptime", "gauge", "s", (), "otel_monitoring.meters.system", "Time the system has been running."),
    MetricDoc("system.process.count", "updowncounter", "{process}", (), "otel_monitoring.meters.system", "Processes on the host."),
    MetricDoc("process.uptime", "gauge", "s", (), "otel_monitoring.meters.system", "Time the process has been running."),
    # --- system and process (contrib instrumentation, lean default set) ---
    MetricDoc("system.cpu.time", "counter", "s", ("cpu", "state"), CONTRIB_SYSTEM, "CPU seconds by state."),
    MetricDoc("system.cpu.utilization", "gauge", "1", ("cpu", "state"), CONTRIB_SYSTEM, "CPU fraction by state."),
    MetricDoc("system.memory.usage", "gauge", "By", ("state",), CONTRIB_SYSTEM, "Memory bytes by state."),
    MetricDoc("system.memory.utilization", "gauge", "1", ("state",), CONTRIB_SYSTEM, "Memory fraction by state."),
    MetricDoc("system.swap.usage", "gauge", "pages", ("state",), CONTRIB_SYSTEM,
              "Swap by state (the contrib's declared unit; the values are bytes)."),
    MetricDoc("system.swap.utilization", "gauge", "1", ("state",), CONTRIB_SYSTEM, "Swap fraction by state."),
    MetricDoc("system.disk.io", "counter", "By", ("device", "direction"), CONTRIB_SYSTEM, "Disk bytes read and written."),
    MetricDoc("system.network.io", "counter", "By", ("device", "direction"), CONTRIB_SYSTEM, "Network bytes by direction."),
    MetricDoc("process.cpu.time", "counter", "s", ("type",), CONTRIB_SYSTEM, "Process CPU seconds."),
    MetricDoc("process.cpu.utilization", "gauge", "1", ("type",), CONTRIB_SYSTEM, "Process CPU fraction."),
    MetricDoc("process.memory.usage", "updowncounter", "By", (), CONTRIB_SYSTEM, "Process resident memory."),
    MetricDoc("process.memory.virtual", "updowncounter", "By", (), CONTRIB_SYSTEM, "Process virtual memory."),
    MetricDoc("process.open_file_descriptor.count", "updowncounter", "", (), CONTRIB_SYSTEM, "Open file descriptors."),
    MetricDoc("process.thread.count", "updowncounter", "", (), CONTRIB_SYSTEM, "Process threads."),
    # --- the collector ---
    MetricDoc("traces.span.metrics.calls", "counter", "", SPANMETRICS_DIMENSIONS, SPANMETRICS,
              "Spans per service, span name, kind and status.", prometheus="traces_span_metrics_calls_total"),
    MetricDoc("traces.span.metrics.duration", "histogram", "s", SPANMETRICS_DIMENSIONS, SPANMETRICS,
              "Span durations (buckets written as durations: 500us ... 60s).",
              prometheus="traces_span_metrics_duration_seconds"),
    MetricDoc("otel_monitoring.log.records", "counter", "", ("service.name",), "collector: count connector",
              "Log records received by the agent.", prometheus="otel_monitoring_log_records_total"),
    MetricDoc("otel_monitoring.log.records.error", "counter", "", ("service.name",), "collector: count connector",
              "Log records of severity ERROR or above.", prometheus="otel_monitoring_log_records_error_total"),
)


def markdown() -> str:
    lines = [
        "# Metric reference",
        "",
        "Every metric otel-monitoring and its collector emit. Generated from `otel_monitoring/metric_reference.py`",
        "(`python -m otel_monitoring.metric_reference > docs/metrics.md`); the ground-truth suite",
        "(`tests/ground_truth`) checks it against what a known workload really produced.",
        "Prometheus names: dots become underscores, the unit adds a suffix (`_seconds`, `_bytes`, `_ratio`, `_USD`)",
        "and counters end in `_total`; the service is the `job` label.",
        "",
        "| metric | instrument | unit | attributes | source | Prometheus | what it measures |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for metric in METRICS:
        attributes = ", ".join(f"`{a}`" for a in metric.attributes)
        lines.append(f"| `{metric.name}` | {metric.instrument} | `{metric.unit}` | {attributes} | {metric.source} "
                     f"| `{metric.prometheus_name}` | {metric.description} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
