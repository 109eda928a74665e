"""Every telemetry name the package writes or reads: metric names, attribute keys, bucket advice.

One definition per name: the instrumentors, meters, cost processor, local mode, views and the
metric reference all refer to these constants, so a renamed attribute cannot leave a reader
behind (tests/test_names.py fails on a dotted telemetry name written as a literal elsewhere).
Names the semantic conventions define are taken from ``opentelemetry.semconv``, as the contrib
GenAI utilities do; ``trading.*``, ``rag.*`` and ``otel_monitoring.*`` are ours
(docs/trading-conventions.md, docs/instrumentation.md). These names are an interface: keep them
stable.
"""

from __future__ import annotations

from opentelemetry.semconv._incubating.attributes import event_attributes as _event_attributes
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as _gen_ai_attributes
from opentelemetry.semconv._incubating.attributes import host_attributes as _host_attributes
from opentelemetry.semconv._incubating.attributes import http_attributes as _http_attributes_incubating
from opentelemetry.semconv._incubating.attributes import openai_attributes as _openai_attributes
from opentelemetry.semconv._incubating.attributes import os_attributes as _os_attributes
from opentelemetry.semconv._incubating.attributes import process_attributes as _process_attributes
from opentelemetry.semconv._incubating.attributes import system_attributes as _system_attributes
from opentelemetry.semconv._incubating.metrics import db_metrics as _db_metrics
from opentelemetry.semconv._incubating.metrics import gen_ai_metrics as _gen_ai_metrics
from opentelemetry.semconv._incubating.metrics import http_metrics as _http_metrics_incubating
from opentelemetry.semconv._incubating.metrics import process_metrics as _process_metrics
from opentelemetry.semconv._incubating.metrics import system_metrics as _system_metrics
from opentelemetry.semconv.attributes import code_attributes as _code_attributes
from opentelemetry.semconv.attributes import db_attributes as _db_attributes
from opentelemetry.semconv.attributes import deployment_attributes as _deployment_attributes
from opentelemetry.semconv.attributes import error_attributes as _error_attributes
from opentelemetry.semconv.attributes import exception_attributes as _exception_attributes
from opentelemetry.semconv.attributes import http_attributes as _http_attributes
from opentelemetry.semconv.attributes import network_attributes as _network_attributes
from opentelemetry.semconv.attributes import otel_attributes as _otel_attributes
from opentelemetry.semconv.attributes import server_attributes as _server_attributes
from opentelemetry.semconv.attributes import service_attributes as _service_attributes
from opentelemetry.semconv.attributes import telemetry_attributes as _telemetry_attributes
from opentelemetry.semconv.attributes import url_attributes as _url_attributes
from opentelemetry.semconv.metrics import http_metrics as _http_metrics

# --- RED metrics of every wrapped call (the wrapper core), all domains ---
OPERATION_DURATION = "otel_monitoring.operation.duration"  # histogram, s
OPERATION_CALLS = "otel_monitoring.operation.calls"  # counter, {call}
OPERATION_ERRORS = "otel_monitoring.operation.errors"  # counter, {error}

# Metric attributes of the RED metrics (low cardinality only).
DOMAIN = "domain"  # trading | rag | api | custom
COMPONENT = "component"
OPERATION = "operation"
OUTCOME = "outcome"  # success | error
ERROR_TYPE = _error_attributes.ERROR_TYPE
OUTCOME_SUCCESS = "success"
OUTCOME_ERROR = "error"

# Span attributes every wrapped call carries (the span name says the same in prose).
SPAN_COMPONENT = "otel_monitoring.component"
SPAN_OPERATION = "otel_monitoring.operation"

# Durations from sub-millisecond cache hits to minute-long batch calls.
DURATION_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

# --- GenAI (OpenTelemetry semantic conventions, gen_ai.*) ---
GEN_AI_OPERATION_DURATION = _gen_ai_metrics.GEN_AI_CLIENT_OPERATION_DURATION  # histogram, s
GEN_AI_TOKEN_USAGE = _gen_ai_metrics.GEN_AI_CLIENT_TOKEN_USAGE  # histogram, {token}
# The bucket boundaries the GenAI metrics spec recommends.
GEN_AI_DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
GEN_AI_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)

GEN_AI_OPERATION_NAME = _gen_ai_attributes.GEN_AI_OPERATION_NAME
GEN_AI_PROVIDER_NAME = _gen_ai_attributes.GEN_AI_PROVIDER_NAME
GEN_AI_REQUEST_MODEL = _gen_ai_attributes.GEN_AI_REQUEST_MODEL
GEN_AI_RESPONSE_MODEL = _gen_ai_attributes.GEN_AI_RESPONSE_MODEL
# On the openai client instrumentation's spans and metrics (a JSON answer's; a stream has none).
OPENAI_RESPONSE_SYSTEM_FINGERPRINT = _openai_attributes.OPENAI_RESPONSE_SYSTEM_FINGERPRINT
GEN_AI_REQUEST_TOP_K = _gen_ai_attributes.GEN_AI_REQUEST_TOP_K
GEN_AI_REQUEST_TEMPERATURE = _gen_ai_attributes.GEN_AI_REQUEST_TEMPERATURE
GEN_AI_REQUEST_MAX_TOKENS = _gen_ai_attributes.GEN_AI_REQUEST_MAX_TOKENS
GEN_AI_DATA_SOURCE_ID = _gen_ai_attributes.GEN_AI_DATA_SOURCE_ID
GEN_AI_USAGE_INPUT_TOKENS = _gen_ai_attributes.GEN_AI_USAGE_INPUT_TOKENS
GEN_AI_USAGE_OUTPUT_TOKENS = _gen_ai_attributes.GEN_AI_USAGE_OUTPUT_TOKENS
GEN_AI_TOKEN_TYPE = _gen_ai_attributes.GEN_AI_TOKEN_TYPE  # input | output
GEN_AI_RESPONSE_FINISH_REASONS = _gen_ai_attributes.GEN_AI_RESPONSE_FINISH_REASONS
GEN_AI_INPUT_MESSAGES = _gen_ai_attributes.GEN_AI_INPUT_MESSAGES  # content capture only
GEN_AI_OUTPUT_MESSAGES = _gen_ai_attributes.GEN_AI_OUTPUT_MESSAGES  # content capture only
GEN_AI_EMBEDDINGS_DIMENSION_COUNT = _gen_ai_attributes.GEN_AI_EMBEDDINGS_DIMENSION_COUNT
GEN_AI_TOOL_NAME = _gen_ai_attributes.GEN_AI_TOOL_NAME
GEN_AI_TOOL_TYPE = _gen_ai_attributes.GEN_AI_TOOL_TYPE
GEN_AI_TOOL_CALL_ID = _gen_ai_attributes.GEN_AI_TOOL_CALL_ID
GEN_AI_TOOL_DESCRIPTION = _gen_ai_attributes.GEN_AI_TOOL_DESCRIPTION
GEN_AI_TOOL_CALL_ARGUMENTS = _gen_ai_attributes.GEN_AI_TOOL_CALL_ARGUMENTS  # content capture only
GEN_AI_TOOL_CALL_RESULT = _gen_ai_attributes.GEN_AI_TOOL_CALL_RESULT  # content capture only
# LCEL pipelines have no GenAI convention: ``chain {name}`` spans carry the name here.
CHAIN_NAME = "otel_monitoring.chain.name"
# Retrieval results (no convention yet: our namespace, documented in docs/instrumentation.md).
RETRIEVAL_DOCUMENTS_COUNT = "otel_monitoring.retrieval.documents.count"
RETRIEVAL_TOP_SCORE = "otel_monitoring.retrieval.top_score"
RETRIEVAL_QUERY_TEXT = "otel_monitoring.retrieval.query.text"  # content capture only
DB_COLLECTION_NAME = _db_attributes.DB_COLLECTION_NAME
# Observable gauge, {vector}: vectors per collection (no convention yet; by db.system.name, db.collection.name).
VECTOR_STORE_VECTORS = "otel_monitoring.vector_store.vectors"
DB_SYSTEM_NAME = _db_attributes.DB_SYSTEM_NAME
DB_OPERATION_NAME = _db_attributes.DB_OPERATION_NAME

# --- trading.* (ours: docs/trading-conventions.md) ---
TRADING_MARKET_DATA_AGE = "trading.market_data.age"  # histogram, s
# Market data is fresh within milliseconds on a healthy feed and minutes old on a stalled one.
MARKET_DATA_AGE_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

TRADING_EXCHANGE = "trading.exchange"
TRADING_OPERATION = "trading.operation"
TRADING_SYMBOL = "trading.symbol"
TRADING_SYMBOLS_COUNT = "trading.symbols.count"
TRADING_MARKET_DATA_TYPE = "trading.market_data.type"  # ticker | order_book
TRADING_ORDER_SIDE = "trading.order.side"
TRADING_ORDER_TYPE = "trading.order.type"
TRADING_ORDER_AMOUNT = "trading.order.amount"
TRADING_ORDER_PRICE = "trading.order.price"
TRADING_ORDER_ID = "trading.order.id"
TRADING_ORDER_STATUS = "trading.order.status"
TRADING_ORDER_FILLED = "trading.order.filled"
TRADING_ORDER_AVERAGE_PRICE = "trading.order.average_price"
TRADING_ORDER_COST = "trading.order.cost"
TRADING_ORDER_FEE = "trading.order.fee"
TRADING_ORDER_FEE_CURRENCY = "trading.order.fee_currency"
TRADING_ORDER_FEE_RATE = "trading.order.fee_rate"
TRADING_RESULT_COUNT = "trading.result.count"
TRADING_TIMEFRAME = "trading.timeframe"
TRADING_ASYNC = "trading.async"

# --- trading.* WebSocket market data (ccxt.pro watch_* methods) ---
TRADING_MARKET_DATA_MESSAGES = "trading.market_data.messages"  # counter, {message}
TRADING_MARKET_DATA_LATENCY = "trading.market_data.latency"  # histogram, s: receipt - exchange timestamp
TRADING_MARKET_DATA_INTERVAL = "trading.market_data.interval"  # histogram, s: between two messages of a stream
TRADING_MARKET_DATA_GAPS = "trading.market_data.gaps"  # counter, {gap}
TRADING_MARKET_DATA_RATE = "trading.market_data.rate"  # gauge, {message}/s over the rate window
TRADING_MARKET_DATA_BELOW_MIN_RATE = "trading.market_data.below_min_rate"  # gauge, 1 when under the stream's minimum
# gauge, 1 for the stream's own LIVE/DELAYED/STALE (trading.market_data.status is the symbol's, from its freshest source)
TRADING_MARKET_DATA_STREAM_STATUS = "trading.market_data.stream.status"
TRADING_WEBSOCKET_CONNECTIONS = "trading.websocket.connections"  # up-down counter, {connection}
TRADING_WEBSOCKET_RECONNECTS = "trading.websocket.reconnects"  # counter, {reconnect}
TRADING_WEBSOCKET_DISCONNECTS = "trading.websocket.disconnects"  # counter, {disconnect}
TRADING_WEBSOCKET_ERRORS = "trading.websocket.errors"  # counter, {error}, by error.type (ccxt error class)
TRADING_MARKET_DATA_CHANNEL = "trading.market_data.channel"  # the watch method: watch_ticker, watch_order_book...
TRADING_WEBSOCKET_REASON = "trading.websocket.reason"  # server_close | the ccxt error class of the drop
TRADING_WEBSOCKET_RECONNECT = "trading.websocket.reconnect"  # span: the connection replaces a dropped one
TRADING_WEBSOCKET_URL = "trading.websocket.url"  # span only
# A healthy feed delivers within tens of milliseconds; its alert rule fires on a p95 above 100 ms.
MARKET_DATA_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# From order-book diffs every 100 ms to quiet markets whose tickers come once a minute.
MARKET_DATA_INTERVAL_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# --- trading.* order lifecycle ---
TRADING_ORDERS_PLACED = "trading.orders.placed"  # counter, {order}
TRADING_ORDERS_FILLED = "trading.orders.filled"  # counter, {order}
TRADING_ORDER_PARTIAL_FILLS = "trading.order.partial_fills"  # counter, {fill}
TRADING_ORDER_FILL_TIME = "trading.order.fill_time"  # histogram, s: create_order to filled
TRADING_ORDER_SUCCESS_RATE = "trading.order.success_rate"  # gauge, 1: filled / placed
ORDER_FILL_TIME_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)

# --- trading.* cost per signal ---
TRADING_SIGNAL_COST = "trading.signal.cost"  # counter, USD: cost of the calls and orders in a signal's trace
TRADING_STRATEGY = "trading.strategy"

# --- log analyzer categories, counted by the agent collector's count connector (collector-config/agent.yaml) ---
LOG_CONNECTION_ERRORS = "otel_monitoring.log.connection_errors"
LOG_TIMEOUTS = "otel_monitoring.log.timeouts"
LOG_SLOW_OPERATIONS = "otel_monitoring.log.slow_operations"

# --- the meters, cost, local mode, resource and views, by namespace ---
# alert.*
ALERT_EVENT = "alert.event"
ALERT_ID = "alert.id"
# code.*
CODE_FUNCTION_NAME = _code_attributes.CODE_FUNCTION_NAME
# cost.*
COST_CATEGORY = "cost.category"
COST_TYPE = "cost.type"
# db.*
DB_OPERATION_BATCH_SIZE = _db_attributes.DB_OPERATION_BATCH_SIZE
# The contrib SQLAlchemy instrumentation's pool gauge, in the old database conventions: its
# attributes are "pool.name" and "state".
DB_CLIENT_CONNECTIONS_USAGE = _db_metrics.DB_CLIENT_CONNECTIONS_USAGE
DB_POOL_NAME = "pool.name"
# deployment.*
DEPLOYMENT_ENVIRONMENT_NAME = _deployment_attributes.DEPLOYMENT_ENVIRONMENT_NAME
# event.*
EVENT_NAME = _event_attributes.EVENT_NAME
# exception.*
EXCEPTION_MESSAGE = _exception_attributes.EXCEPTION_MESSAGE
EXCEPTION_TYPE = _exception_attributes.EXCEPTION_TYPE
# gen_ai.*
GEN_AI_SYSTEM = _gen_ai_attributes.GEN_AI_SYSTEM
GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS = _gen_ai_attributes.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS
GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS = _gen_ai_attributes.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS
GEN_AI_USAGE_COMPLETION_TOKENS = _gen_ai_attributes.GEN_AI_USAGE_COMPLETION_TOKENS
GEN_AI_USAGE_PROMPT_TOKENS = _gen_ai_attributes.GEN_AI_USAGE_PROMPT_TOKENS
# host.*
HOST_ARCH = _host_attributes.HOST_ARCH
HOST_NAME = _host_attributes.HOST_NAME
# http.*
HTTP_CLIENT_DURATION = "http.client.duration"
HTTP_CLIENT_REQUEST_DURATION = _http_metrics.HTTP_CLIENT_REQUEST_DURATION
HTTP_METHOD = _http_attributes_incubating.HTTP_METHOD
HTTP_REQUEST_METHOD = _http_attributes.HTTP_REQUEST_METHOD
HTTP_RESPONSE_STATUS_CODE = _http_attributes.HTTP_RESPONSE_STATUS_CODE
HTTP_ROUTE = _http_attributes.HTTP_ROUTE
HTTP_SERVER_ACTIVE_REQUESTS = _http_metrics_incubating.HTTP_SERVER_ACTIVE_REQUESTS
HTTP_SERVER_DURATION = "http.server.duration"
HTTP_SERVER_REQUEST_DURATION = _http_metrics.HTTP_SERVER_REQUEST_DURATION
# internal.*
INTERNAL_SPAN_FORMAT = "internal.span.format"
# network.*
NETWORK_PROTOCOL_VERSION = _network_attributes.NETWORK_PROTOCOL_VERSION
# os.*
OS_TYPE = _os_attributes.OS_TYPE
# otel.*
OTEL_SCOPE_NAME = _otel_attributes.OTEL_SCOPE_NAME
OTEL_SCOPE_VERSION = _otel_attributes.OTEL_SCOPE_VERSION
OTEL_STATUS_CODE = _otel_attributes.OTEL_STATUS_CODE
OTEL_STATUS_DESCRIPTION = _otel_attributes.OTEL_STATUS_DESCRIPTION
# otel_monitoring.*
ALERT_NOTIFICATIONS = "otel_monitoring.alert.notifications"
BUDGET_LIMIT = "otel_monitoring.budget.limit"
BUDGET_NAME = "otel_monitoring.budget.name"
BUDGET_PERIOD = "otel_monitoring.budget.period"
BUDGET_PERIOD_START = "otel_monitoring.budget.period_start"
BUDGET_SPENT = "otel_monitoring.budget.spent"
BUDGET_THRESHOLD = "otel_monitoring.budget.threshold"
BUDGET_THRESHOLD_CROSSED = "otel_monitoring.budget.threshold_crossed"
BUDGET_UTILIZATION = "otel_monitoring.budget.utilization"
COST = "otel_monitoring.cost"
COST_BUDGET_LIMIT = "otel_monitoring.cost.budget.limit"
COST_BUDGET_SPENT = "otel_monitoring.cost.budget.spent"
COST_BUDGET_UTILIZATION = "otel_monitoring.cost.budget.utilization"
COST_PER_OPERATION = "otel_monitoring.cost.per_operation"
COST_UNPRICED = "otel_monitoring.cost.unpriced"
COST_UNPRICED_REASON = "otel_monitoring.cost.unpriced.reason"
DB_RESULT_COUNT = "otel_monitoring.db.result.count"
EMBEDDINGS_INPUT_COUNT = "otel_monitoring.embeddings.input.count"
HEALTH_CHECK_DURATION = "otel_monitoring.health.check.duration"
HEALTH_CHECK_NAME = "otel_monitoring.health.check.name"
HEALTH_CHECK_STATUS = "otel_monitoring.health.check.status"
HOST_HEALTH_SCORE = "otel_monitoring.host.health.score"
HOST_HEALTH_STATE = "otel_monitoring.host.health.state"
HOST_HEALTH_STATUS = "otel_monitoring.host.health.status"
HOST_RESOURCE = "otel_monitoring.host.resource"
HOST_RESOURCE_UTILIZATION = "otel_monitoring.host.resource.utilization"
LOG_RECORDS = "otel_monitoring.log.records"
LOG_RECORDS_ERROR = "otel_monitoring.log.records.error"
RETRIEVAL_TOP_DISTANCE = "otel_monitoring.retrieval.top_distance"
# process.*
PROCESS_COMMAND = _process_attributes.PROCESS_COMMAND
PROCESS_CPU_TIME = _process_metrics.PROCESS_CPU_TIME
PROCESS_CPU_UTILIZATION = _process_metrics.PROCESS_CPU_UTILIZATION
PROCESS_EXECUTABLE_NAME = _process_attributes.PROCESS_EXECUTABLE_NAME
PROCESS_MEMORY_USAGE = _process_metrics.PROCESS_MEMORY_USAGE
PROCESS_MEMORY_VIRTUAL = _process_metrics.PROCESS_MEMORY_VIRTUAL
PROCESS_OPEN_FILE_DESCRIPTOR_COUNT = _process_metrics.PROCESS_OPEN_FILE_DESCRIPTOR_COUNT
PROCESS_PARENT_PID = _process_attributes.PROCESS_PARENT_PID
PROCESS_PID = _process_attributes.PROCESS_PID
PROCESS_RUNTIME_NAME = _process_attributes.PROCESS_RUNTIME_NAME
PROCESS_RUNTIME_VERSION = _process_attributes.PROCESS_RUNTIME_VERSION
PROCESS_THREAD_COUNT = _process_metrics.PROCESS_THREAD_COUNT
PROCESS_UPTIME = _process_metrics.PROCESS_UPTIME
# rag.*
RAG_COLLECTION = "rag.collection"
RAG_RETRIEVAL_EMPTY_RATE = "rag.retrieval.empty_rate"
RAG_RETRIEVAL_HIT_RATE = "rag.retrieval.hit_rate"
RAG_RETRIEVAL_OUTCOME = "rag.retrieval.outcome"
RAG_RETRIEVAL_RELEVANCE = "rag.retrieval.relevance"
RAG_RETRIEVALS = "rag.retrievals"
# server.*
SERVER_ADDRESS = _server_attributes.SERVER_ADDRESS
SERVER_PORT = _server_attributes.SERVER_PORT
# service.*
SERVICE_INSTANCE_ID = _service_attributes.SERVICE_INSTANCE_ID
SERVICE_NAME = _service_attributes.SERVICE_NAME
SERVICE_VERSION = _service_attributes.SERVICE_VERSION
# span.*
SPAN_KIND = "span.kind"
SPAN_NAME = "span.name"
# status.*
STATUS_CODE = "status.code"
# system.*
SYSTEM_CPU_LOAD_AVERAGE_15M = "system.cpu.load_average.15m"
SYSTEM_CPU_LOAD_AVERAGE_1M = "system.cpu.load_average.1m"
SYSTEM_CPU_LOAD_AVERAGE_5M = "system.cpu.load_average.5m"
SYSTEM_CPU_LOGICAL_NUMBER = _system_attributes.SYSTEM_CPU_LOGICAL_NUMBER
SYSTEM_CPU_STATE = _system_attributes.SYSTEM_CPU_STATE
SYSTEM_CPU_TIME = _system_metrics.SYSTEM_CPU_TIME
SYSTEM_CPU_UTILIZATION = _system_metrics.SYSTEM_CPU_UTILIZATION
SYSTEM_DEVICE = _system_attributes.SYSTEM_DEVICE
SYSTEM_DISK_IO = _system_metrics.SYSTEM_DISK_IO
SYSTEM_FILESYSTEM_MODE = _system_attributes.SYSTEM_FILESYSTEM_MODE
SYSTEM_FILESYSTEM_MOUNTPOINT = _system_attributes.SYSTEM_FILESYSTEM_MOUNTPOINT
SYSTEM_FILESYSTEM_STATE = _system_attributes.SYSTEM_FILESYSTEM_STATE
SYSTEM_FILESYSTEM_TYPE = _system_attributes.SYSTEM_FILESYSTEM_TYPE
SYSTEM_FILESYSTEM_USAGE = _system_metrics.SYSTEM_FILESYSTEM_USAGE
SYSTEM_FILESYSTEM_UTILIZATION = _system_metrics.SYSTEM_FILESYSTEM_UTILIZATION
SYSTEM_MEMORY_STATE = _system_attributes.SYSTEM_MEMORY_STATE
SYSTEM_MEMORY_USAGE = _system_metrics.SYSTEM_MEMORY_USAGE
SYSTEM_MEMORY_UTILIZATION = _system_metrics.SYSTEM_MEMORY_UTILIZATION
SYSTEM_NETWORK_IO = _system_metrics.SYSTEM_NETWORK_IO
SYSTEM_PROCESS_COUNT = _system_metrics.SYSTEM_PROCESS_COUNT
SYSTEM_SWAP_USAGE = "system.swap.usage"
SYSTEM_SWAP_UTILIZATION = "system.swap.utilization"
SYSTEM_THREAD_COUNT = "system.thread_count"
SYSTEM_UPTIME = _system_metrics.SYSTEM_UPTIME
# telemetry.*
TELEMETRY_DISTRO_NAME = _telemetry_attributes.TELEMETRY_DISTRO_NAME
TELEMETRY_DISTRO_VERSION = _telemetry_attributes.TELEMETRY_DISTRO_VERSION
# traces.*
TRACES_SPAN_METRICS_CALLS = "traces.span.metrics.calls"
TRACES_SPAN_METRICS_DURATION = "traces.span.metrics.duration"
# The same histogram in milliseconds, for Jaeger's Monitor tab (collector-config/agent.yaml).
TRACES_SPAN_METRICS_DURATION_MS = "traces.span.metrics.duration.milliseconds"
# trading.*
TRADING_ACCOUNT_ID = "trading.account.id"
TRADING_ACCOUNT_NUMBER = "trading.account.number"
TRADING_EXPOSURE = "trading.exposure"
TRADING_MARKET_DATA_STALENESS = "trading.market_data.staleness"
TRADING_MARKET_DATA_STATE = "trading.market_data.state"
TRADING_MARKET_DATA_STATUS = "trading.market_data.status"
TRADING_ORDER_FILL_RATIO = "trading.order.fill_ratio"
TRADING_ORDER_SLIPPAGE = "trading.order.slippage"
TRADING_PNL_REALIZED = "trading.pnl.realized"
TRADING_PNL_UNREALIZED = "trading.pnl.unrealized"
TRADING_PROFIT_FACTOR = "trading.profit_factor"
TRADING_SIGNAL_ACCURACY = "trading.signal.accuracy"
TRADING_SIGNAL_DIRECTION = "trading.signal.direction"
TRADING_SIGNAL_OUTCOME = "trading.signal.outcome"
TRADING_SIGNAL_OUTCOMES = "trading.signal.outcomes"
TRADING_SIGNALS = "trading.signals"
TRADING_SLIPPAGE_DIRECTION = "trading.slippage.direction"
TRADING_TRADE_OUTCOME = "trading.trade.outcome"
TRADING_TRADES = "trading.trades"
TRADING_WIN_RATE = "trading.win_rate"
# url.*
URL_PATH = _url_attributes.URL_PATH
URL_SCHEME = _url_attributes.URL_SCHEME
