"""Which series the operator views read, and how they group them into rows.

The metric and attribute names come from ``otel_monitoring.names`` (the OpenTelemetry names, as
in metrics_live.json and the history store); the Prometheus source maps them to the names the
collector's prometheus exporter exposes. A tuple lists the names a reading accepts, in order of
preference: the first one present in the data wins (the contrib system-metrics instrumentation,
for instance, writes ``state`` where the semantic conventions say ``system.cpu.state``).
"""

from __future__ import annotations

from .. import names

# --- system (contrib system-metrics instrumentation and the meters package) ---
CPU_UTILIZATION = (names.SYSTEM_CPU_UTILIZATION,)               # ratio per cpu and state
MEMORY_UTILIZATION = (names.SYSTEM_MEMORY_UTILIZATION,)         # ratio per state (used, free, ...)
FILESYSTEM_UTILIZATION = (names.SYSTEM_FILESYSTEM_UTILIZATION,)  # ratio per mountpoint and state
LOAD_AVERAGE_1M = (names.SYSTEM_CPU_LOAD_AVERAGE_1M,)
HOST_HEALTH_SCORE = (names.HOST_HEALTH_SCORE,)
# CPU, memory and fullest-disk fractions the host score and the host alert rules read (one sample).
HOST_RESOURCE_UTILIZATION = (names.HOST_RESOURCE_UTILIZATION,)
HOST_RESOURCE = (names.HOST_RESOURCE,)
HEALTH_CHECK_STATUS = (names.HEALTH_CHECK_STATUS,)  # 1 healthy / 0 per check name

# --- RED: duration histograms in seconds, and call/error counters ---
# Any histogram whose unit is "s" is shown; these are the ones known to carry RED attributes.
DURATION_HISTOGRAMS = (
    names.OPERATION_DURATION,
    names.HTTP_SERVER_REQUEST_DURATION,
    names.HTTP_CLIENT_REQUEST_DURATION,
    names.GEN_AI_OPERATION_DURATION,
    names.HTTP_SERVER_DURATION,            # the old HTTP conventions, in ms: read and shown in s
    names.HTTP_CLIENT_DURATION,
)
# Old-convention histograms and the stable one that replaces them: with both present
# (OTEL_SEMCONV_STABILITY_OPT_IN=http/dup) the same requests are shown once, from the stable one.
SUPERSEDED_BY = {names.HTTP_SERVER_DURATION: names.HTTP_SERVER_REQUEST_DURATION,
                 names.HTTP_CLIENT_DURATION: names.HTTP_CLIENT_REQUEST_DURATION}
# Our GenAI instrumentors record each call in the RED histogram AND in gen_ai.client.operation.duration:
# when the RED histogram has calls of this domain, the gen_ai rows are the same calls and not shown.
GENAI_DURATION = names.GEN_AI_OPERATION_DURATION
GENAI_RED_DOMAIN = "rag"
# Histograms in seconds that are not operations of the application (health checks' own timing,
# the age of market data when it arrives; WebSocket feeds and orders: feed rows and trading readings).
NOT_OPERATIONS = (names.HEALTH_CHECK_DURATION, names.TRADING_MARKET_DATA_AGE,
                  names.TRADING_MARKET_DATA_LATENCY, names.TRADING_MARKET_DATA_INTERVAL, names.TRADING_ORDER_FILL_TIME)
# Operations that are model calls (gen_ai.operation.name values): their latency is held to seconds.
MODEL_OPERATIONS = ("chat", "embeddings", "text_completion", "generate_content", "invoke_agent")
# A p95 from fewer calls is one slow call, not a percentile: such rows are left out of "worst p95".
MIN_CALLS_FOR_P95 = 20
# Outgoing HTTP calls: made inside the application's own operations (a ccxt call's request, a model
# client's), so shown as rows of their own (per server) but left out of the totals, which would
# otherwise count such a call twice.
OUTGOING_HISTOGRAMS = (names.HTTP_CLIENT_REQUEST_DURATION, names.HTTP_CLIENT_DURATION)
OUTGOING_ROW_KEYS = (names.HTTP_REQUEST_METHOD, names.SERVER_ADDRESS, names.SERVER_PORT)  # "GET 127.0.0.1:8080"
# Units the views read durations in, as the factor to seconds.
SECONDS_PER_UNIT = {"s": 1.0, "ms": 0.001}
DOMAIN = names.DOMAIN
CALL_COUNTERS = (names.OPERATION_CALLS,)

# --- cost and budgets ---
COST = (names.COST,)                             # counter, USD, by cost.type
BUDGET_UTILIZATION = (names.COST_BUDGET_UTILIZATION,)  # ratio per budget name and period
BUDGET_SPENT = (names.COST_BUDGET_SPENT,)              # USD in the current period
BUDGET_LIMIT = (names.COST_BUDGET_LIMIT,)

# --- trading KPIs ---
# No orders counter: orders are the instrumented create_order calls (RED rows).
ORDER_OPERATIONS = ("create_order",)
FILL_RATIO = (names.TRADING_ORDER_FILL_RATIO,)                  # histogram of filled / amount per order
PNL_REALIZED = (names.TRADING_PNL_REALIZED,)                    # up-down counter, USD
PNL_UNREALIZED = (names.TRADING_PNL_UNREALIZED,)                # gauge, USD
SIGNAL_ACCURACY = (names.TRADING_SIGNAL_ACCURACY,)              # ratio per strategy
MARKET_DATA_STALENESS = (names.TRADING_MARKET_DATA_STALENESS,)  # seconds since the last update, per symbol
MARKET_DATA_STATUS = (names.TRADING_MARKET_DATA_STATUS,)        # 1 for the symbol's current state
# WebSocket feeds (ccxt.pro streams): per exchange, channel (watch method) and symbol
FEED_MESSAGES = (names.TRADING_MARKET_DATA_MESSAGES,)           # counter
FEED_RATE = (names.TRADING_MARKET_DATA_RATE,)                   # gauge, messages/s over the last minute
FEED_LATENCY = (names.TRADING_MARKET_DATA_LATENCY,)             # histogram, s
FEED_GAPS = (names.TRADING_MARKET_DATA_GAPS,)                   # counter
FEED_BELOW_MIN_RATE = (names.TRADING_MARKET_DATA_BELOW_MIN_RATE,)  # gauge, 1 when under its minimum
FEED_STATUS = (names.TRADING_MARKET_DATA_STREAM_STATUS,)  # 1 for the stream's own state (MARKET_DATA_STATUS: the symbol's)
WEBSOCKET_DISCONNECTS = (names.TRADING_WEBSOCKET_DISCONNECTS,)  # counter
ORDER_SUCCESS_RATE = (names.TRADING_ORDER_SUCCESS_RATE,)        # ratio per exchange
ORDERS_PLACED = (names.TRADING_ORDERS_PLACED,)                   # counter per exchange: success rate's denominator
ORDERS_FILLED = (names.TRADING_ORDERS_FILLED,)                   # counter per exchange: its numerator
CHANNEL = names.TRADING_MARKET_DATA_CHANNEL

# --- RAG KPIs ---
RAG_HIT_RATE = (names.RAG_RETRIEVAL_HIT_RATE,)
RAG_RELEVANCE = (names.RAG_RETRIEVAL_RELEVANCE,)                # histogram: mean = sum / count
RAG_EMPTY_RATE = (names.RAG_RETRIEVAL_EMPTY_RATE,)
GENAI_TOKEN_USAGE = (names.GEN_AI_TOKEN_USAGE,)           # histogram by gen_ai.token.type

# --- attribute keys ---
COMPONENT = names.COMPONENT
OPERATION = names.OPERATION
OUTCOME = names.OUTCOME
ERROR_TYPE = names.ERROR_TYPE
STATE = ("state", names.SYSTEM_CPU_STATE, names.SYSTEM_MEMORY_STATE, names.SYSTEM_FILESYSTEM_STATE)
CPU_STATE_IDLE = "idle"
MOUNTPOINT = (names.SYSTEM_FILESYSTEM_MOUNTPOINT, "mountpoint")
COST_TYPE = names.COST_TYPE
BUDGET_PERIOD = (names.BUDGET_PERIOD,)
BUDGET_NAME = (names.BUDGET_NAME,)
SYMBOL = (names.TRADING_SYMBOL, "symbol")
EXCHANGE = names.TRADING_EXCHANGE
STALENESS_STATE = names.TRADING_MARKET_DATA_STATE               # LIVE, DELAYED, STALE
HEALTH_CHECK_NAME = names.HEALTH_CHECK_NAME
TOKEN_TYPE = names.GEN_AI_TOKEN_TYPE
# What names a RED row when component/operation are absent, per family of duration metric.
ROW_KEYS = (
    (COMPONENT, OPERATION),
    (names.GEN_AI_OPERATION_NAME, names.GEN_AI_REQUEST_MODEL),
    (names.HTTP_REQUEST_METHOD, names.HTTP_ROUTE),
    (names.SERVICE_NAME, names.SPAN_NAME),                      # the collector's spanmetrics connector
)
