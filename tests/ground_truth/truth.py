"""The truth of the ground-truth workload, from what it did, and the checks every path is held to.

Counts are known in advance (workload.CALLS). A duration's truth is the span's own duration as
written in the OTLP/JSON file: every histogram, whatever path it is read from, must have counted
each call in the bucket that duration belongs to.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import workload as W
from support import attributes, read_otlp_file, spans_from_requests

STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR
KIND_NAMES = {1: "SPAN_KIND_INTERNAL", 2: "SPAN_KIND_SERVER", 3: "SPAN_KIND_CLIENT"}

# One logical call, one span: the spans each kind of call makes, by span name.
LLM_CHAT = f"chat {W.LLM_MODEL}"
EXPECTED_SPANS = {
    "GET /slow": W.CALLS["slow"],
    "GET /fast": W.CALLS["fast"],
    "GET /boom": W.CALLS["boom"],
    f"chat {W.CHAT_MODEL}": W.CALLS["chat"],
    "retrieval InMemoryVectorStore": W.CALLS["retrieve"],  # the retriever's; its inner search is not a second span
    "embeddings hash-embedding-64": W.CALLS["retrieve"] + 1,  # one per query, one for add_texts
    "ccxt.fetch_ticker": W.CALLS["ticker"],
    "ccxt.create_order": W.CALLS["order"] + W.CALLS["order_refused"],
    "ccxt.load_markets": 1 + W.CALLS["feed"],  # once per client (REST; each feed's own), at its first call
    # the WebSocket feed: one span for the subscription's first message and one for the close, none
    # per message (its connections are counted from the server's log: expected_spans())
    "ccxt.watch_ticker": W.CALLS["feed"],
    "ccxt.close": W.CALLS["feed"],
    "jobs.step": W.CALLS["step"] + W.CALLS["step_fail"],
    # the LLM client: one client span per request to the model; a langchain chat over it is its
    # parent (two spans of one call, counted once: checked by layer in the test)
    "GET /ask": W.CALLS["ask"], "GET /ask_stream": W.CALLS["ask_stream"],
    LLM_CHAT: W.CALLS["ask"] + W.CALLS["ask_stream"] + 2 * (W.CALLS["lc_chat"] + W.CALLS["rag_chain"]),
    # the chain and its retrieval over chromadb (the collection's query is that retrieval, not a
    # second span); the tool loop: its chain, the fake model's two turns (no model name) and the tool
    f"chain {W.CHAIN_NAME}": W.CALLS["rag_chain"],
    "retrieval ChromaRetriever": W.CALLS["rag_chain"],
    f"query {W.CHROMA_DOCS}": 0,
    f"chain {W.TOOL_CHAIN_NAME}": W.CALLS["tool"],
    "chat": 2 * W.CALLS["tool"],
    "execute_tool get_price": W.CALLS["tool"],
    f"add {W.CHROMA_DOCS}": 1, f"add {W.CHROMA_SCRATCH}": 1, f"delete {W.CHROMA_SCRATCH}": 1,
}


def expected_spans(truth: dict[str, Any]) -> dict[str, int]:
    """EXPECTED_SPANS, one ``ccxt.websocket.connect`` span per connection the stream server accepted,
    and the SQLAlchemy spans: one per statement (named by the statement's verb and the database
    file), and one ``connect`` per ``engine.begin()``."""
    db = truth["db_path"]
    found = {**EXPECTED_SPANS, "ccxt.websocket.connect": truth["feed_connections"],
             f"CREATE {db}": 1, f"INSERT {db}": W.CALLS["db"], f"SELECT {db}": W.CALLS["db"],
             "connect": 1 + W.CALLS["db"]}
    return {name: count for name, count in found.items() if count}


EXPECTED_ERRORS = {"GET /boom": W.CALLS["boom"], "ccxt.create_order": W.CALLS["order_refused"],
                   "jobs.step": W.CALLS["step_fail"]}
# Durations a library measures with its own clock next to its span, not from it. FastAPI's server
# histogram reads perf_counter around the request while its span has its own start and end; on a
# busy machine the two were measured up to ~18 ms apart on error requests (docs/accuracy.md), so a
# call may be counted a bucket away from its span's. Counts stay exact; the bucket check allows
# this much either way. The client histograms: requests times only the inner send() inside its span
# (shorter than the span by any amount: connection set-up, a busy machine), aiohttp-client reads its
# own clock between aiohttp's trace hooks, which may end up to the same 50 ms after the span. A
# tolerance is (how much longer, how much shorter) a reading may be than its span.
# Everything measured from the span itself is held exactly.
LIBRARY_CLOCK_TOLERANCE_S = 0.050
SERVER_CLOCK = (LIBRARY_CLOCK_TOLERANCE_S, LIBRARY_CLOCK_TOLERANCE_S)
CLIENT_CLOCK = (LIBRARY_CLOCK_TOLERANCE_S, math.inf)
EXACT = (0.0, 0.0)
# The LLM client instrumentation (opentelemetry-util-genai) starts its duration clock after its span
# starts and records before the span ends: its reading is shorter than the span by any amount.
LLM_CLIENT_CLOCK = (0.001, math.inf)
Tolerance = tuple[float, float]

@dataclass
class Span:
    name: str
    kind: int
    scope: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    error: bool
    trace_id: str
    events: list[str] = field(default_factory=list)
    span_id: str = ""
    parent_id: str = ""

    @property
    def duration(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9

    @property
    def kind_name(self) -> str:
        return KIND_NAMES.get(self.kind, str(self.kind))


def read_spans(path: str) -> list[Span]:
    spans = []
    for _, scope, span in spans_from_requests(read_otlp_file(path, "traces")):
        spans.append(Span(span.name, span.kind, scope.name, span.start_time_unix_nano, span.end_time_unix_nano,
                          attributes(span.attributes), span.status.code == STATUS_ERROR, span.trace_id.hex(),
                          [event.name for event in span.events], span.span_id.hex(), span.parent_span_id.hex()))
    return spans


# The contrib HTTP client instrumentations whose spans and http.client.request.duration the workload
# makes: requests (its own calls and ccxt's REST), aiohttp-client (ccxt.pro's REST and its WebSocket
# handshake). Both count into the same metric name with the same attributes, from their own meters.
# httpx: the openai client's requests to the LLM stub.
HTTP_CLIENT_SCOPES = ("opentelemetry.instrumentation.requests", "opentelemetry.instrumentation.aiohttp_client",
                      "opentelemetry.instrumentation.httpx")


def last_points(path: str) -> dict[str, list[tuple[dict[str, Any], Any, str]]]:
    """{metric: [(attributes, data point, unit)]} of the last export of each series (cumulative). A
    series is a scope's: two instrumentations may report the same name and attributes."""
    latest: dict[tuple[str, str, str], tuple[int, dict[str, Any], Any, str]] = {}
    for request in read_otlp_file(path, "metrics"):
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                scope = scope_metrics.scope.name
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    for point in getattr(metric, kind).data_points:
                        attrs = attributes(point.attributes)
                        key = (scope, metric.name, repr(sorted(attrs.items())))
                        if key not in latest or point.time_unix_nano >= latest[key][0]:
                            latest[key] = (point.time_unix_nano, attrs, point, metric.unit)
    result: dict[str, list] = {}
    for (_, name, _), (_, attrs, point, unit) in latest.items():
        result.setdefault(name, []).append((attrs, point, unit))
    return result


def bucket_index(value: float, bounds: Sequence[float]) -> int:
    """The bucket a value is counted in: (bounds[i-1], bounds[i]], the last one open."""
    return bisect.bisect_left(list(bounds), value)


def true_quantile(values: Iterable[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]  # nearest rank


def assert_buckets(bounds: Sequence[float], counts: Sequence[float], durations: Sequence[float], what: str,
                   tolerance: Tolerance = EXACT) -> None:
    """Each call counted in the bucket of its span's duration: at every bound, the cumulative count
    equals the number of spans at or under it (within ``tolerance`` of it for a library's clock)."""
    assert len(counts) == len(bounds) + 1, f"{what}: {len(counts)} counts for {len(bounds)} bounds"
    assert sum(counts) == len(durations), f"{what}: {sum(counts)} counted, {len(durations)} spans"
    cumulative = 0.0
    for bound, count in zip(bounds, counts):
        cumulative += count
        _check_bound(bound, cumulative, durations, what, tolerance)


def _check_bound(bound: float, cumulative: float, durations: Sequence[float], what: str,
                 tolerance: Tolerance) -> None:
    longer, shorter = tolerance
    low = sum(1 for d in durations if d <= bound - longer)  # counted under the bound even if read longer
    high = sum(1 for d in durations if d <= bound + shorter)  # may be counted under it if read shorter
    assert low <= cumulative <= high, (f"{what}: {cumulative:g} calls counted at or under {bound:g} s, the spans "
                                       f"say {low if low == high else f'{low}..{high}'}: "
                                       f"{sorted(round(d, 6) for d in durations)}")


def assert_cumulative_buckets(le_counts: dict[float, float], durations: Sequence[float], what: str,
                              tolerance: Tolerance = EXACT) -> None:
    """The same for Prometheus' cumulative ``le`` buckets."""
    assert le_counts.get(math.inf) == len(durations), f"{what}: +Inf holds {le_counts.get(math.inf)}, {len(durations)} spans"
    for bound, cumulative in sorted(le_counts.items()):
        if not math.isinf(bound):
            _check_bound(bound, cumulative, durations, f"{what} le", tolerance)


def quantile_bucket(value: float, durations: Sequence[float], bounds: Sequence[float], q: float) -> tuple[int, int]:
    """(bucket of the shown quantile, bucket of the true quantile)."""
    return bucket_index(value, bounds), bucket_index(true_quantile(durations, q), bounds)


# --- which spans an SDK histogram point counts ---

# RED and GenAI point attributes a span must agree with when the span has them (retrieval spans
# carry no provider; the point of their operation names the instrumentation).
_LENIENT_KEYS = ("gen_ai.provider.name",)


def red_spans(spans: list[Span], attrs: dict[str, Any]) -> list[Span]:
    """Spans of an otel_monitoring.operation.duration point: component, operation and outcome."""
    error = attrs.get("outcome") == "error"
    return [s for s in spans if s.attributes.get("otel_monitoring.component") == attrs.get("component")
            and s.attributes.get("otel_monitoring.operation") == attrs.get("operation") and s.error == error
            and all(s.attributes.get(k) == v for k, v in attrs.items()
                    if k in ("trading.exchange", "trading.order.side", "gen_ai.request.model", "error.type",
                             "gen_ai.tool.name"))
            and all(s.attributes.get(k, v) == v for k, v in attrs.items() if k in _LENIENT_KEYS)]


# Attributes the openai client instrumentation puts on some of its points and spans only (a JSON
# answer's system fingerprint; a stream has none): a span with one belongs to the point with it.
_DISTINGUISHING_KEYS = ("openai.response.system_fingerprint",)


def delegated(span: Span, spans: list[Span]) -> bool:
    """A langchain GenAI span over an LLM client's span: the client's counts the call."""
    return span.scope.startswith("otel_monitoring") and any(
        child.parent_id == span.span_id and not child.scope.startswith("otel_monitoring")
        and child.attributes.get("gen_ai.operation.name") == span.attributes.get("gen_ai.operation.name")
        for child in spans)


def genai_spans(spans: list[Span], attrs: dict[str, Any]) -> list[Span]:
    """Spans of a gen_ai.client.operation.duration point: ours, and the LLM client instrumentation's
    (each call once: the client's where langchain drives a client)."""
    return [s for s in spans if s.attributes.get("gen_ai.operation.name") == attrs.get("gen_ai.operation.name")
            and s.attributes.get("gen_ai.request.model") == attrs.get("gen_ai.request.model")
            and all(s.attributes.get(k, v) == v for k, v in attrs.items() if k in _LENIENT_KEYS)
            and all(s.attributes.get(k) == attrs.get(k) for k in _DISTINGUISHING_KEYS)
            and not delegated(s, spans)]


def server_spans(spans: list[Span], attrs: dict[str, Any]) -> list[Span]:
    return [s for s in spans if s.kind == 2 and s.attributes.get("http.route") == attrs.get("http.route")
            and s.attributes.get("http.response.status_code") == attrs.get("http.response.status_code")]


def client_spans(spans: list[Span], attrs: dict[str, Any]) -> list[Span]:
    return [s for s in spans if s.kind == 3 and s.scope in HTTP_CLIENT_SCOPES
            and s.attributes.get("http.request.method") == attrs.get("http.request.method")
            and s.attributes.get("http.response.status_code") == attrs.get("http.response.status_code")
            and s.attributes.get("server.port") == attrs.get("server.port")
            # requests reports the protocol version on its spans and points, aiohttp-client on neither
            and s.attributes.get("network.protocol.version") == attrs.get("network.protocol.version")]


# metric -> (the spans a point counts, tolerance)
HISTOGRAM_TRUTH = {
    "otel_monitoring.operation.duration": (red_spans, EXACT),
    "gen_ai.client.operation.duration": (genai_spans, EXACT),
    "http.server.request.duration": (server_spans, SERVER_CLOCK),
    "http.client.request.duration": (client_spans, CLIENT_CLOCK),
}


def tolerance(metric: str, spans: list[Span]) -> Tolerance:
    """How far a point of ``metric`` counting ``spans`` may read from them: the LLM client
    instrumentation's GenAI points read their own clock, ours read the span."""
    if metric == "gen_ai.client.operation.duration" and any(not s.scope.startswith("otel_monitoring") for s in spans):
        return LLM_CLIENT_CLOCK
    return HISTOGRAM_TRUTH[metric][1]
