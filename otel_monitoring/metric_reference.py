"""Every metric the package and its collector emit: name, instrument, unit, attributes and source.

``docs/metrics.md`` is generated from ``METRICS`` (``python -m otel_monitoring.metric_reference >
docs/metrics.md``), and the ground-truth suite checks the table against what a known workload
really produced (names, instruments, units, attribute keys), so the reference cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from . import names

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


RED = (names.DOMAIN, names.COMPONENT, names.OPERATION, names.OUTCOME, names.ERROR_TYPE, names.GEN_AI_OPERATION_NAME, names.GEN_AI_PROVIDER_NAME,
       names.GEN_AI_REQUEST_MODEL, names.GEN_AI_TOOL_NAME, names.TRADING_EXCHANGE, names.TRADING_ORDER_SIDE)
GENAI = (names.GEN_AI_OPERATION_NAME, names.GEN_AI_PROVIDER_NAME, names.GEN_AI_REQUEST_MODEL, names.ERROR_TYPE)
# The LLM client instrumentation (openai-v2) adds the response's model and fingerprint.
GENAI_CLIENTS = (*GENAI, names.GEN_AI_RESPONSE_MODEL, names.OPENAI_RESPONSE_SYSTEM_FINGERPRINT)
GENAI_SOURCES = "otel_monitoring.instrumentation.rag / opentelemetry-instrumentation-openai-v2"
BUDGET = (names.BUDGET_NAME, names.BUDGET_PERIOD)
FILESYSTEM = (names.SYSTEM_DEVICE, names.SYSTEM_FILESYSTEM_MOUNTPOINT, names.SYSTEM_FILESYSTEM_TYPE, names.SYSTEM_FILESYSTEM_MODE)
HTTP_SERVER = (names.HTTP_REQUEST_METHOD, names.HTTP_ROUTE, names.HTTP_RESPONSE_STATUS_CODE, names.ERROR_TYPE, names.URL_SCHEME,
               names.NETWORK_PROTOCOL_VERSION, names.SERVER_ADDRESS, names.SERVER_PORT)
HTTP_CLIENT = (names.HTTP_REQUEST_METHOD, names.HTTP_RESPONSE_STATUS_CODE, names.ERROR_TYPE, names.SERVER_ADDRESS, names.SERVER_PORT,
               names.NETWORK_PROTOCOL_VERSION, names.URL_SCHEME)
CONTRIB_SYSTEM = "opentelemetry-instrumentation-system-metrics (lean default set, docs/meters.md)"
FEED = (names.TRADING_EXCHANGE, names.TRADING_MARKET_DATA_CHANNEL, names.TRADING_SYMBOL)
CCXT_FEEDS = "otel_monitoring.instrumentation.trading.ccxt (ccxt.pro watch_*)"
CCXT_ORDERS = "otel_monitoring.instrumentation.trading.ccxt (order lifecycle)"
SPANMETRICS = "collector: span_metrics connector (collector-config/agent.yaml)"
SPANMETRICS_DIMENSIONS = (names.SERVICE_NAME, names.SPAN_NAME, names.SPAN_KIND, names.STATUS_CODE, names.HTTP_REQUEST_METHOD,
                          names.HTTP_RESPONSE_STATUS_CODE, names.GEN_AI_OPERATION_NAME, names.TRADING_EXCHANGE, names.ERROR_TYPE)

METRICS: tuple[MetricDoc, ...] = (
    # --- RED of every instrumented call ---
    MetricDoc(names.OPERATION_DURATION, "histogram", "s", RED, "otel_monitoring.instrumentation.core",
              "Duration of each instrumented call (the span's own duration)."),
    MetricDoc(names.OPERATION_CALLS, "counter", "{call}", RED, "otel_monitoring.instrumentation.core",
              "Instrumented calls, by outcome."),
    MetricDoc(names.OPERATION_ERRORS, "counter", "{error}", RED, "otel_monitoring.instrumentation.core",
              "Instrumented calls that raised, by error.type."),
    # --- GenAI semantic conventions ---
    MetricDoc(names.GEN_AI_OPERATION_DURATION, "histogram", "s", GENAI_CLIENTS, GENAI_SOURCES,
              "GenAI operation duration (chat, embeddings, retrieval). A langchain chat over an LLM client is "
              "counted once, by the client's instrumentation (which reads its own clock inside its span)."),
    MetricDoc(names.GEN_AI_TOKEN_USAGE, "histogram", "{token}", (*GENAI_CLIENTS, names.GEN_AI_TOKEN_TYPE),
              GENAI_SOURCES, "Tokens per call, input and output apart (gen_ai.token.type); each call once."),
    # --- HTTP (FastAPI's own telemetry, or the contrib instrumentations, stable conventions) ---
    MetricDoc(names.HTTP_SERVER_REQUEST_DURATION, "histogram", "s", HTTP_SERVER,
              "FastAPI's own telemetry (or opentelemetry-instrumentation-fastapi)", "HTTP server request duration."),
    MetricDoc(names.HTTP_SERVER_ACTIVE_REQUESTS, "updowncounter", "{request}", (names.HTTP_REQUEST_METHOD, names.URL_SCHEME,
              names.SERVER_ADDRESS, names.SERVER_PORT), "FastAPI's own telemetry (or opentelemetry-instrumentation-fastapi)",
              "HTTP server requests in flight."),
    # --- storage (the contrib instrumentations; statement timings come from the spans' span metrics) ---
    MetricDoc(names.DB_CLIENT_CONNECTIONS_USAGE, "updowncounter", "connections", (names.DB_POOL_NAME, "state"),
              "opentelemetry-instrumentation-sqlalchemy",
              "Connections of an engine's pool, by state (idle, used).",
              prometheus="db_client_connections_usage"),  # "connections" is no UCUM unit: no suffix
    MetricDoc(names.HTTP_CLIENT_REQUEST_DURATION, "histogram", "s", HTTP_CLIENT,
              "opentelemetry-instrumentation-requests / -httpx / -aiohttp-client",
              "Outgoing HTTP request duration (the library times the send inside its span)."),
    # --- trading ---
    MetricDoc(names.TRADING_MARKET_DATA_AGE, "histogram", "s", (names.TRADING_EXCHANGE, names.TRADING_MARKET_DATA_TYPE),
              "otel_monitoring.instrumentation.trading.ccxt", "Age of market data when received."),
    MetricDoc(names.TRADING_MARKET_DATA_STALENESS, "gauge", "s", (names.TRADING_SYMBOL, names.TRADING_EXCHANGE),
              "otel_monitoring.meters.trading", "Seconds since the symbol's last market-data update (one series per symbol)."),
    MetricDoc(names.TRADING_MARKET_DATA_STATUS, "gauge", "1", (names.TRADING_SYMBOL, names.TRADING_EXCHANGE,
              names.TRADING_MARKET_DATA_STATE), "otel_monitoring.meters.trading", "1 for the symbol's current state."),
    MetricDoc(names.TRADING_SIGNALS, "counter", "{signal}", (names.TRADING_STRATEGY, names.TRADING_SYMBOL, names.TRADING_SIGNAL_DIRECTION),
              "otel_monitoring.meters.trading", "Trading signals generated."),
    MetricDoc(names.TRADING_SIGNAL_OUTCOMES, "counter", "{signal}", (names.TRADING_STRATEGY, names.TRADING_SYMBOL,
              names.TRADING_SIGNAL_OUTCOME), "otel_monitoring.meters.trading", "Signals judged correct or incorrect."),
    MetricDoc(names.TRADING_SIGNAL_ACCURACY, "gauge", "1", (names.TRADING_STRATEGY,), "otel_monitoring.meters.trading",
              "Correct / judged signals over the KPI window."),
    MetricDoc(names.TRADING_TRADES, "counter", "{trade}", (names.TRADING_STRATEGY, names.TRADING_SYMBOL, names.TRADING_TRADE_OUTCOME),
              "otel_monitoring.meters.trading", "Closed trades by outcome."),
    MetricDoc(names.TRADING_PNL_REALIZED, "updowncounter", "USD", (names.TRADING_STRATEGY, names.TRADING_SYMBOL),
              "otel_monitoring.meters.trading", "Realized PnL."),
    MetricDoc(names.TRADING_PNL_UNREALIZED, "gauge", "USD", (names.TRADING_STRATEGY, names.TRADING_SYMBOL),
              "otel_monitoring.meters.trading", "Unrealized PnL."),
    MetricDoc(names.TRADING_EXPOSURE, "gauge", "USD", (names.TRADING_STRATEGY, names.TRADING_SYMBOL),
              "otel_monitoring.meters.trading", "Open position value."),
    MetricDoc(names.TRADING_WIN_RATE, "gauge", "1", (names.TRADING_STRATEGY,), "otel_monitoring.meters.trading",
              "Winning / (winning + losing) trades."),
    MetricDoc(names.TRADING_PROFIT_FACTOR, "gauge", "1", (names.TRADING_STRATEGY,), "otel_monitoring.meters.trading",
              "Gross profit / gross loss (once there is a loss)."),
    MetricDoc(names.TRADING_ORDER_SLIPPAGE, "histogram", "{bp}", (names.TRADING_EXCHANGE, names.TRADING_SYMBOL, names.TRADING_ORDER_SIDE,
              names.TRADING_SLIPPAGE_DIRECTION), "otel_monitoring.meters.trading", "Fill distance from the expected price."),
    MetricDoc(names.TRADING_ORDER_FILL_RATIO, "histogram", "1", (names.TRADING_EXCHANGE, names.TRADING_SYMBOL),
              "otel_monitoring.meters.trading", "Filled / ordered amount per order."),
    MetricDoc(names.TRADING_SIGNAL_COST, "counter", "USD", (names.TRADING_STRATEGY,), "otel_monitoring.meters.trading",
              "Cost of the orders and paid calls in signals' traces; / trading.signals is the cost per signal."),
    # --- trading: WebSocket feeds and the order lifecycle (ccxt.pro) ---
    MetricDoc(names.TRADING_MARKET_DATA_MESSAGES, "counter", "{message}", FEED, CCXT_FEEDS,
              "WebSocket messages received through watch_* calls, per stream."),
    MetricDoc(names.TRADING_MARKET_DATA_LATENCY, "histogram", "s", FEED, CCXT_FEEDS,
              "Receipt time of a message minus the exchange's timestamp on it."),
    MetricDoc(names.TRADING_MARKET_DATA_INTERVAL, "histogram", "s", FEED, CCXT_FEEDS,
              "Time between two messages of one stream."),
    MetricDoc(names.TRADING_MARKET_DATA_GAPS, "counter", "{gap}", FEED, CCXT_FEEDS,
              "Pauses in a stream far above its usual interval."),
    MetricDoc(names.TRADING_MARKET_DATA_RATE, "gauge", "{message}/s", FEED, CCXT_FEEDS,
              "Messages per second of a stream over the last minute."),
    MetricDoc(names.TRADING_MARKET_DATA_BELOW_MIN_RATE, "gauge", "1", FEED, CCXT_FEEDS,
              "1 while a stream with a configured minimum rate is under it."),
    MetricDoc(names.TRADING_MARKET_DATA_STREAM_STATUS, "gauge", "1", (*FEED, names.TRADING_MARKET_DATA_STATE),
              CCXT_FEEDS, "1 for the stream's own state by its thresholds; the symbol's is trading.market_data.status."),
    MetricDoc(names.TRADING_WEBSOCKET_CONNECTIONS, "updowncounter", "{connection}", (names.TRADING_EXCHANGE,), CCXT_FEEDS,
              "Open WebSocket connections."),
    MetricDoc(names.TRADING_WEBSOCKET_RECONNECTS, "counter", "{reconnect}", (names.TRADING_EXCHANGE, names.TRADING_WEBSOCKET_REASON),
              CCXT_FEEDS, "Connections opened again after a drop, by the drop's reason."),
    MetricDoc(names.TRADING_WEBSOCKET_DISCONNECTS, "counter", "{disconnect}", (names.TRADING_EXCHANGE,
              names.TRADING_WEBSOCKET_REASON), CCXT_FEEDS, "Connections dropped (not closed by the application)."),
    MetricDoc(names.TRADING_WEBSOCKET_ERRORS, "counter", "{error}", (*FEED, names.ERROR_TYPE), CCXT_FEEDS,
              "watch_* calls that raised, by ccxt error class."),
    MetricDoc(names.TRADING_ORDERS_PLACED, "counter", "{order}", (names.TRADING_EXCHANGE,), CCXT_ORDERS,
              "Orders the exchange accepted (create_order)."),
    MetricDoc(names.TRADING_ORDERS_FILLED, "counter", "{order}", (names.TRADING_EXCHANGE,), CCXT_ORDERS,
              "Placed orders seen fully filled."),
    MetricDoc(names.TRADING_ORDER_PARTIAL_FILLS, "counter", "{fill}", (names.TRADING_EXCHANGE,), CCXT_ORDERS,
              "Updates that filled part of an order."),
    MetricDoc(names.TRADING_ORDER_FILL_TIME, "histogram", "s", (names.TRADING_EXCHANGE,), CCXT_ORDERS,
              "From create_order to the update that shows the order filled."),
    MetricDoc(names.TRADING_ORDER_SUCCESS_RATE, "gauge", "1", (names.TRADING_EXCHANGE,), CCXT_ORDERS,
              "Filled / placed orders per exchange since the start."),
    # --- RAG ---
    MetricDoc(names.RAG_RETRIEVALS, "counter", "{retrieval}", (names.RAG_COLLECTION, names.RAG_RETRIEVAL_OUTCOME),
              "otel_monitoring.meters.rag", "Retrievals by outcome (hit, miss, empty)."),
    MetricDoc(names.RAG_RETRIEVAL_HIT_RATE, "gauge", "1", (names.RAG_COLLECTION,), "otel_monitoring.meters.rag",
              "Hits / retrievals over the KPI window."),
    MetricDoc(names.RAG_RETRIEVAL_EMPTY_RATE, "gauge", "1", (names.RAG_COLLECTION,), "otel_monitoring.meters.rag",
              "Empty results / retrievals over the KPI window."),
    MetricDoc(names.RAG_RETRIEVAL_RELEVANCE, "histogram", "1", (names.RAG_COLLECTION,), "otel_monitoring.meters.rag",
              "Best relevance score of each retrieval."),
    MetricDoc(names.VECTOR_STORE_VECTORS, "gauge", "{vector}", (names.DB_SYSTEM_NAME,
              names.DB_COLLECTION_NAME), "otel_monitoring.instrumentation.rag.vector_counts",
              "Vectors per collection."),
    # --- cost and budgets ---
    MetricDoc(names.COST, "counter", "USD", (names.COST_TYPE, names.COST_CATEGORY, names.GEN_AI_REQUEST_MODEL,
              names.GEN_AI_TOKEN_TYPE, names.GEN_AI_PROVIDER_NAME, names.TRADING_EXCHANGE, names.SERVER_ADDRESS),
              "otel_monitoring.meters.cost", "Money spent, by cost type (model tokens input and output apart)."),
    MetricDoc(names.COST_PER_OPERATION, "histogram", "USD", (names.OPERATION, "user.id", "tenant.id"),
              "otel_monitoring.meters.cost", "Cost of the paid calls under one root operation (an API request, a "
              "RAG query), recorded when it ends; plus the configured cost attribute (cost_attribute)."),
    MetricDoc(names.COST_UNPRICED, "counter", "{event}", (names.COST_TYPE, names.COST_UNPRICED_REASON,
              names.GEN_AI_REQUEST_MODEL, names.TRADING_EXCHANGE, names.SERVER_ADDRESS), "otel_monitoring.meters.cost",
              "Costs that could not be priced: never a silent zero."),
    MetricDoc(names.COST_BUDGET_UTILIZATION, "gauge", "1", BUDGET, "otel_monitoring.meters.budgets",
              "Spent / limit in the current period."),
    MetricDoc(names.COST_BUDGET_SPENT, "gauge", "USD", BUDGET, "otel_monitoring.meters.budgets",
              "Spent in the current period."),
    MetricDoc(names.COST_BUDGET_LIMIT, "gauge", "USD", BUDGET, "otel_monitoring.meters.budgets",
              "The budget's limit."),
    # --- health ---
    MetricDoc(names.HEALTH_CHECK_STATUS, "gauge", "1", (names.HEALTH_CHECK_NAME,),
              "otel_monitoring.meters.health_checks", "1 if the check passed on its last run."),
    MetricDoc(names.HEALTH_CHECK_DURATION, "histogram", "s", (names.HEALTH_CHECK_NAME,),
              "otel_monitoring.meters.health_checks", "Time one health check took."),
    MetricDoc(names.HOST_HEALTH_SCORE, "gauge", "{score}", (), "otel_monitoring.meters.host_health",
              "Host health 0-100."),
    MetricDoc(names.HOST_HEALTH_STATUS, "gauge", "1", (names.HOST_HEALTH_STATE,),
              "otel_monitoring.meters.host_health", "1 for the current host health state."),
    MetricDoc(names.HOST_RESOURCE_UTILIZATION, "gauge", "1", (names.HOST_RESOURCE,),
              "otel_monitoring.meters.host_health", "CPU busy, memory used and fullest-disk fractions."),
    # --- local alerting ---
    MetricDoc(names.ALERT_NOTIFICATIONS, "counter", "{notification}", ("channel", "outcome"),
              "otel_monitoring.local.notifier", "Alert notifications by channel and outcome."),
    # --- system and process (ours) ---
    MetricDoc(names.SYSTEM_FILESYSTEM_USAGE, "updowncounter", "By", (*FILESYSTEM, names.SYSTEM_FILESYSTEM_STATE),
              "otel_monitoring.meters.system", "Filesystem bytes by state."),
    MetricDoc(names.SYSTEM_FILESYSTEM_UTILIZATION, "gauge", "1", FILESYSTEM, "otel_monitoring.meters.system",
              "Used / (used + free), as df shows it."),
    MetricDoc(names.SYSTEM_CPU_LOAD_AVERAGE_1M, "gauge", "{thread}", (), "otel_monitoring.meters.system", "Load average, 1 minute."),
    MetricDoc(names.SYSTEM_CPU_LOAD_AVERAGE_5M, "gauge", "{thread}", (), "otel_monitoring.meters.system", "Load average, 5 minutes."),
    MetricDoc(names.SYSTEM_CPU_LOAD_AVERAGE_15M, "gauge", "{thread}", (), "otel_monitoring.meters.system", "Load average, 15 minutes."),
    MetricDoc(names.SYSTEM_UPTIME, "gauge", "s", (), "otel_monitoring.meters.system", "Time the system has been running."),
    MetricDoc(names.SYSTEM_PROCESS_COUNT, "updowncounter", "{process}", (), "otel_monitoring.meters.system", "Processes on the host."),
    MetricDoc(names.PROCESS_UPTIME, "gauge", "s", (), "otel_monitoring.meters.system", "Time the process has been running."),
    # --- system and process (contrib instrumentation, lean default set) ---
    MetricDoc(names.SYSTEM_CPU_TIME, "counter", "s", ("cpu", "state"), CONTRIB_SYSTEM, "CPU seconds by state."),
    MetricDoc(names.SYSTEM_CPU_UTILIZATION, "gauge", "1", ("cpu", "state"), CONTRIB_SYSTEM, "CPU fraction by state."),
    MetricDoc(names.SYSTEM_MEMORY_USAGE, "gauge", "By", ("state",), CONTRIB_SYSTEM, "Memory bytes by state."),
    MetricDoc(names.SYSTEM_MEMORY_UTILIZATION, "gauge", "1", ("state",), CONTRIB_SYSTEM, "Memory fraction by state."),
    MetricDoc(names.SYSTEM_SWAP_USAGE, "gauge", "pages", ("state",), CONTRIB_SYSTEM,
              "Swap by state (the contrib's declared unit; the values are bytes)."),
    MetricDoc(names.SYSTEM_SWAP_UTILIZATION, "gauge", "1", ("state",), CONTRIB_SYSTEM, "Swap fraction by state."),
    MetricDoc(names.SYSTEM_DISK_IO, "counter", "By", ("device", "direction"), CONTRIB_SYSTEM, "Disk bytes read and written."),
    MetricDoc(names.SYSTEM_NETWORK_IO, "counter", "By", ("device", "direction"), CONTRIB_SYSTEM, "Network bytes by direction."),
    MetricDoc(names.PROCESS_CPU_TIME, "counter", "s", ("type",), CONTRIB_SYSTEM, "Process CPU seconds."),
    MetricDoc(names.PROCESS_CPU_UTILIZATION, "gauge", "1", ("type",), CONTRIB_SYSTEM, "Process CPU fraction."),
    MetricDoc(names.PROCESS_MEMORY_USAGE, "updowncounter", "By", (), CONTRIB_SYSTEM, "Process resident memory."),
    MetricDoc(names.PROCESS_MEMORY_VIRTUAL, "updowncounter", "By", (), CONTRIB_SYSTEM, "Process virtual memory."),
    MetricDoc(names.PROCESS_OPEN_FILE_DESCRIPTOR_COUNT, "updowncounter", "", (), CONTRIB_SYSTEM, "Open file descriptors."),
    MetricDoc(names.PROCESS_THREAD_COUNT, "updowncounter", "", (), CONTRIB_SYSTEM, "Process threads."),
    # --- the collector ---
    MetricDoc(names.TRACES_SPAN_METRICS_CALLS, "counter", "", SPANMETRICS_DIMENSIONS, SPANMETRICS,
              "Spans per service, span name, kind and status.", prometheus="traces_span_metrics_calls_total"),
    MetricDoc(names.TRACES_SPAN_METRICS_DURATION, "histogram", "s", SPANMETRICS_DIMENSIONS, SPANMETRICS,
              "Span durations (buckets written as durations: 500us ... 60s).",
              prometheus="traces_span_metrics_duration_seconds"),
    MetricDoc(names.TRACES_SPAN_METRICS_DURATION_MS, "histogram", "ms", SPANMETRICS_DIMENSIONS, SPANMETRICS,
              "The same histogram in milliseconds, in Prometheus only: what Jaeger's Monitor tab reads "
              "(its UI shows latencies as ms).", prometheus="traces_span_metrics_duration_milliseconds"),
    MetricDoc(names.LOG_RECORDS, "counter", "", (names.SERVICE_NAME,), "collector: count connector",
              "Log records received by the agent.", prometheus="otel_monitoring_log_records_total"),
    MetricDoc(names.LOG_RECORDS_ERROR, "counter", "", (names.SERVICE_NAME,), "collector: count connector",
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
