"""Every metric and attribute name the operator views read, in one place.

Names are the OpenTelemetry ones (as in metrics_live.json and the history store); the Prometheus
source maps them to the names the collector's prometheus exporter exposes. Where the emitting
issue may still settle on a name, the candidates are listed in order of preference: the first
one present in the data wins.
"""

from __future__ import annotations

# --- system (contrib system-metrics instrumentation and the meters package) ---
CPU_UTILIZATION = ("system.cpu.utilization",)               # ratio per cpu and state
MEMORY_UTILIZATION = ("system.memory.utilization",)         # ratio per state (used, free, ...)
FILESYSTEM_UTILIZATION = ("system.filesystem.utilization",)  # ratio per mountpoint and state
LOAD_AVERAGE_1M = ("system.cpu.load_average.1m",)
HOST_HEALTH_SCORE = ("otel_monitoring.host.health.score",)
HEALTH_CHECK_STATUS = ("otel_monitoring.health.check.status",)  # 1 healthy / 0 per check name
UPTIME = ("system.uptime",)

# --- RED: duration histograms in seconds, and call/error counters ---
# Any histogram whose unit is "s" is shown; these are the ones known to carry RED attributes.
DURATION_HISTOGRAMS = (
    "otel_monitoring.operation.duration",
    "http.server.request.duration",
    "http.client.request.duration",
    "gen_ai.client.operation.duration",
    "http.server.duration",            # the old HTTP conventions, in ms: read and shown in s
    "http.client.duration",
)
# Old-convention histograms and the stable one that replaces them: with both present
# (OTEL_SEMCONV_STABILITY_OPT_IN=http/dup) the same requests are shown once, from the stable one.
SUPERSEDED_BY = {"http.server.duration": "http.server.request.duration",
                 "http.client.duration": "http.client.request.duration"}
# Our GenAI instrumentors record each call in the RED histogram AND in gen_ai.client.operation.duration:
# when the RED histogram has calls of this domain, the gen_ai rows are the same calls and not shown.
GENAI_DURATION = "gen_ai.client.operation.duration"
GENAI_RED_DOMAIN = "rag"
# Histograms in seconds that are not operations of the application (health checks' own timing,
# the age of market data when it arrives; WebSocket feeds and orders: feed rows and trading readings).
NOT_OPERATIONS = ("otel_monitoring.health.check.duration", "trading.market_data.age",
                  "trading.market_data.latency", "trading.market_data.interval", "trading.order.fill_time")
# Operations that are model calls (gen_ai.operation.name values): their latency is held to seconds.
MODEL_OPERATIONS = ("chat", "embeddings", "text_completion", "generate_content", "invoke_agent")
# A p95 from fewer calls is one slow call, not a percentile: such rows are left out of "worst p95".
MIN_CALLS_FOR_P95 = 20
# Outgoing HTTP calls: made inside the application's own operations (a ccxt call's request, a model
# client's), so shown as rows of their own (per server) but left out of the totals, which would
# otherwise count such a call twice.
OUTGOING_HISTOGRAMS = ("http.client.request.duration", "http.client.duration")
OUTGOING_ROW_KEYS = ("http.request.method", "server.address", "server.port")  # "GET 127.0.0.1:8080"
# Units the views read durations in, as the factor to seconds.
SECONDS_PER_UNIT = {"s": 1.0, "ms": 0.001}
DOMAIN = "domain"
CALL_COUNTERS = ("otel_monitoring.operation.calls", "otel_monitoring.operation.count")
ERROR_COUNTERS = ("otel_monitoring.operation.errors",)

# --- cost and budgets ---
COST = ("otel_monitoring.cost",)                             # counter, USD, by cost.type
BUDGET_UTILIZATION = ("otel_monitoring.cost.budget.utilization",)  # ratio per budget name and period
BUDGET_SPENT = ("otel_monitoring.cost.budget.spent",)              # USD in the current period
BUDGET_LIMIT = ("otel_monitoring.cost.budget.limit",)

# --- trading KPIs ---
# No orders counter: orders are the instrumented create_order calls (RED rows).
ORDER_OPERATIONS = ("create_order",)
FILL_RATIO = ("trading.order.fill_ratio",)                  # histogram of filled / amount per order
PNL_REALIZED = ("trading.pnl.realized",)                    # up-down counter, USD
PNL_UNREALIZED = ("trading.pnl.unrealized",)                # gauge, USD
SIGNAL_ACCURACY = ("trading.signal.accuracy",)              # ratio per strategy
MARKET_DATA_STALENESS = ("trading.market_data.staleness",)  # seconds since the last update, per symbol
MARKET_DATA_STATUS = ("trading.market_data.status",)        # 1 for the symbol's current state
# WebSocket feeds (ccxt.pro streams): per exchange, channel (watch method) and symbol
FEED_MESSAGES = ("trading.market_data.messages",)           # counter
FEED_RATE = ("trading.market_data.rate",)                   # gauge, messages/s over the last minute
FEED_LATENCY = ("trading.market_data.latency",)             # histogram, s
FEED_GAPS = ("trading.market_data.gaps",)                   # counter
FEED_BELOW_MIN_RATE = ("trading.market_data.below_min_rate",)  # gauge, 1 when under its minimum
WEBSOCKET_DISCONNECTS = ("trading.websocket.disconnects",)  # counter
ORDER_SUCCESS_RATE = ("trading.order.success_rate",)        # ratio per exchange
CHANNEL = "trading.market_data.channel"

# --- RAG KPIs ---
RAG_HIT_RATE = ("rag.retrieval.hit_rate",)
RAG_RELEVANCE = ("rag.retrieval.relevance",)                # histogram: mean = sum / count
RAG_EMPTY_RATE = ("rag.retrieval.empty_rate",)
GENAI_TOKEN_USAGE = ("gen_ai.client.token.usage",)           # histogram by gen_ai.token.type

# --- attribute keys ---
COMPONENT = "component"
OPERATION = "operation"
OUTCOME = "outcome"
ERROR_TYPE = "error.type"
STATE = ("state", "system.cpu.state", "system.memory.state", "system.filesystem.state")
CPU_STATE_IDLE = "idle"
MOUNTPOINT = ("system.filesystem.mountpoint", "mountpoint")
COST_TYPE = "cost.type"
BUDGET_PERIOD = ("otel_monitoring.budget.period", "budget.period")
BUDGET_NAME = ("otel_monitoring.budget.name",)
SYMBOL = ("trading.symbol", "symbol")
EXCHANGE = "trading.exchange"
STALENESS_STATE = "trading.market_data.state"               # LIVE, DELAYED, STALE
HEALTH_CHECK_NAME = "otel_monitoring.health.check.name"
TOKEN_TYPE = "gen_ai.token.type"
# What names a RED row when component/operation are absent, per family of duration metric.
ROW_KEYS = (
    (COMPONENT, OPERATION),
    ("gen_ai.operation.name", "gen_ai.request.model"),
    ("http.request.method", "http.route"),
    ("service.name", "span.name"),                      # the collector's spanmetrics connector
)
