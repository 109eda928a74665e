"""`otel-monitoring traces` against a real Jaeger v2 (tests/stackprocs.py) holding a demo-like
trace sent with the SDK's OTLP exporter: the services, the trace list, and the printed tree's
parent/child structure, durations, status and key attributes."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode

from otel_monitoring.views.trace_tree import build_tree, summarize
from stackprocs import start_jaeger, wait_until

SERVICE = "views-demo-api"
MS = 1_000_000  # nanoseconds


def send_demo_trace(endpoint: str) -> str:
    """An API request that retrieves (with an embedding call), asks a model and places an order
    that fails, then a healthy request, with exact start and end times. Returns both trace ids."""
    provider = TracerProvider(resource=Resource.create({"service.name": SERVICE}), shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"http://{endpoint}", insecure=True)))
    tracer = provider.get_tracer("views-test")
    t0 = time.time_ns() - 5_000 * MS

    def span(name, start_ms, end_ms, parent=None, kind=SpanKind.INTERNAL, attributes=None, error=None):
        context = trace.set_span_in_context(parent) if parent is not None else None
        s = tracer.start_span(name, context=context, kind=kind, start_time=t0 + start_ms * MS, attributes=attributes or {})
        if error:
            s.record_exception(ConnectionError("binance: connection reset"), timestamp=t0 + end_ms * MS)
            s.set_attribute("error.type", error)
            s.set_status(Status(StatusCode.ERROR, f"{error}: exchange unreachable"))
        s.end(end_time=t0 + end_ms * MS)
        return s

    root = tracer.start_span("POST /chat", kind=SpanKind.SERVER, start_time=t0,
                             attributes={"http.request.method": "POST", "http.route": "/chat",
                                         "http.response.status_code": 200, "user.secret": "not shown"})
    retrieval = tracer.start_span("retrieval docs", context=trace.set_span_in_context(root), start_time=t0 + 10 * MS,
                                  attributes={"gen_ai.operation.name": "retrieval", "gen_ai.request.top_k": 4})
    span("embeddings text-embedding-3-small", 12, 32, retrieval, SpanKind.CLIENT,
         {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "text-embedding-3-small"})
    retrieval.end(end_time=t0 + 90 * MS)
    span("chat gpt-4o-mini", 100, 280, root, SpanKind.CLIENT,
         {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 812})
    span("create_order", 285, 295, root, SpanKind.CLIENT,
         {"trading.exchange": "binance", "trading.symbol": "BTC/USDT", "trading.order.side": "buy"}, error="NetworkError")
    root.end(end_time=t0 + 300 * MS)
    healthy = tracer.start_span("GET /orders", kind=SpanKind.SERVER, start_time=t0 + 400 * MS,
                                attributes={"http.request.method": "GET", "http.route": "/orders"})
    span("fetch_open_orders", 402, 420, healthy, SpanKind.CLIENT, {"trading.exchange": "binance"})
    healthy.end(end_time=t0 + 425 * MS)
    provider.force_flush()
    provider.shutdown()
    return format(root.get_span_context().trace_id, "032x"), format(healthy.get_span_context().trace_id, "032x")


@pytest.fixture(scope="module")
def jaeger_with_trace(tmp_path_factory):
    jaeger = start_jaeger(tmp_path_factory.mktemp("jaeger"))
    try:
        trace_id, healthy_id = send_demo_trace(jaeger.otlp_grpc_endpoint)
        wait_until(lambda: len((jaeger.trace(trace_id) or {}).get("spans") or []) == 5
                   and len((jaeger.trace(healthy_id) or {}).get("spans") or []) == 2,
                   timeout=60, what="the demo traces in Jaeger")
        jaeger.healthy_id = healthy_id
        yield jaeger, trace_id
    finally:
        jaeger.stop()


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otel_monitoring.cli", "traces", *args], capture_output=True,
                          text=True, timeout=60)


def test_tree_model_from_jaeger(jaeger_with_trace):
    jaeger, trace_id = jaeger_with_trace
    roots = build_tree(jaeger.trace(trace_id))
    assert len(roots) == 1
    shape = [(depth, node.name, round(node.duration_us / 1000)) for depth, node in roots[0].walk()]
    assert shape == [(0, "POST /chat", 300), (1, "retrieval docs", 80), (2, "embeddings text-embedding-3-small", 20),
                     (1, "chat gpt-4o-mini", 180), (1, "create_order", 10)]
    summary = summarize(jaeger.trace(trace_id))
    assert (summary.span_count, summary.error_count, summary.duration_us) == (5, 1, 300_000)


def test_printed_tree_structure_durations_status_and_attributes(jaeger_with_trace):
    jaeger, trace_id = jaeger_with_trace
    done = cli("--jaeger", jaeger.query_url, trace_id, "--width", "120")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"trace {trace_id}") and "5 spans" in lines[0] and "1 error" in lines[0]   # fits 120
    spans = [line for line in lines[1:] if re.search(r"\s(OK|ERROR|UNSET)\s", line)]
    names = [re.match(r"(.*?)\s+\S+\s+(OK|ERROR|UNSET)", line).group(1) for line in spans]
    assert names == ["POST /chat", "├─ retrieval docs", "│  └─ embeddings text-embedding-3-small",
                     "├─ chat gpt-4o-mini", "└─ create_order"]
    durations = [re.search(r"(\S+)\s+(OK|ERROR|UNSET)", line).group(1) for line in spans]
    assert durations == ["300ms", "80ms", "20ms", "180ms", "10ms"]
    assert re.search(r"create_order\s.*ERROR", spans[-1])
    text = done.stdout
    for attribute in ("http.route=/chat", "http.request.method=POST", "gen_ai.request.model=gpt-4o-mini",
                      "gen_ai.operation.name=retrieval", "trading.symbol=BTC/USDT", "trading.exchange=binance",
                      "error.type=NetworkError", "exception.type=ConnectionError",
                      "exception.message=binance: connection reset"):
        assert attribute in text, attribute
    assert "user.secret" not in text                   # only the key attribute families are printed
    # The attribute lines sit under their span, inside its branch of the tree.
    order_index = lines.index(next(line for line in lines if line.startswith("└─ create_order")))
    under_order = lines[order_index + 1:]          # the last span: its attribute lines end the output
    assert under_order and all(line.startswith("       ") for line in under_order)
    assert "trading.symbol=BTC/USDT" in " ".join(under_order)
    assert max(len(line) for line in lines) <= 120


def test_services_list_and_errors_filter(jaeger_with_trace):
    jaeger, trace_id = jaeger_with_trace
    services = cli("--jaeger", jaeger.query_url)
    assert services.returncode == 0 and SERVICE in services.stdout
    listing = cli("--jaeger", jaeger.query_url, "--service", SERVICE, "--errors", "--width", "100")
    assert listing.returncode == 0, listing.stderr
    row = next(line for line in listing.stdout.splitlines() if trace_id in line)
    assert re.search(rf"{trace_id}\s+300ms\s+5\s+1\s+POST /chat", row)
    assert jaeger.healthy_id not in listing.stdout                 # --errors leaves the healthy trace out
    everything = cli("--jaeger", jaeger.query_url, "--service", SERVICE, "--width", "100").stdout.splitlines()
    assert [line.split()[1] for line in everything[1:]] == [jaeger.healthy_id, trace_id]   # newest first
    assert re.search(rf"{jaeger.healthy_id}\s+25ms\s+2\s+0\s+GET /orders", everything[1])
    last = cli("--jaeger", jaeger.query_url, "--service", SERVICE, "--errors", "--last", "--no-attributes",
               "--width", "80")
    assert last.returncode == 0 and trace_id in last.stdout and "└─ create_order" in last.stdout
    assert "trading.exchange" not in last.stdout
    assert max(len(line) for line in last.stdout.splitlines()) <= 80
    missing = cli("--jaeger", jaeger.query_url, "0" * 31 + "1")
    assert missing.returncode == 1 and "has no trace" in missing.stderr


ORDERED_SERVICE = "views-ordered"


def send_ordered_traces(endpoint: str, starts_s_ago: list[float], flush_each: bool, now: int) -> list[str]:
    """One single-span trace per start (seconds before ``now``, in ns: one instant for every call,
    so the order of the starts does not depend on how long the sending took), sent in the order
    given; returns their ids."""
    provider = TracerProvider(resource=Resource.create({"service.name": ORDERED_SERVICE}), shutdown_on_exit=False)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"http://{endpoint}", insecure=True)))
    tracer = provider.get_tracer("views-test")
    ids = []
    for ago in starts_s_ago:
        start = now - int(ago * 1e9)
        span = tracer.start_span(f"job {ago}", kind=SpanKind.SERVER, start_time=start)
        span.end(end_time=start + 5 * MS)
        ids.append(format(span.get_span_context().trace_id, "032x"))
        if flush_each:
            provider.force_flush()
    provider.force_flush()
    provider.shutdown()
    return ids


@pytest.mark.parametrize("storage", ["badger", "memory"])
def test_last_and_recent_are_the_newest_traces_whatever_order_they_arrived_in(tmp_path, storage):
    """Jaeger's limit is a search depth: it answers with the most recently stored (memory) or
    index-ordered (Badger) traces, not the newest started. The newest trace arrives first here, then
    older ones (more than --last's default search of 20) one export at a time and then in one batch,
    and one from 3 hours ago."""
    jaeger = start_jaeger(tmp_path, storage=storage)
    now = time.time_ns()
    try:
        newest = send_ordered_traces(jaeger.otlp_grpc_endpoint, [1.0], flush_each=True, now=now)[0]
        wait_until(lambda: jaeger.trace(newest), timeout=60, what="the newest trace in Jaeger")
        older_ages = [float(20 + (7 * i) % 25) for i in range(25)]      # 20..44 s ago, shuffled
        older = send_ordered_traces(jaeger.otlp_grpc_endpoint, older_ages, flush_each=True, now=now)
        batch = send_ordered_traces(jaeger.otlp_grpc_endpoint, [9, 7, 3, 5, 8, 4, 6, 2], flush_each=False, now=now)
        old = send_ordered_traces(jaeger.otlp_grpc_endpoint, [3 * 3600], flush_each=True, now=now)[0]
        everything = [newest, *older, *batch, old]
        wait_until(lambda: all(jaeger.trace(t) for t in everything), timeout=60, what="all traces in Jaeger")
        by_age = dict(zip([1.0, *older_ages, 9, 7, 3, 5, 8, 4, 6, 2], [newest, *older, *batch]))
        assert len(by_age) == 34
        newest_first = [by_age[a] for a in sorted(by_age)]

        last = cli("--jaeger", jaeger.query_url, "--service", ORDERED_SERVICE, "--last", "--width", "120")
        assert last.returncode == 0, last.stderr
        assert last.stdout.splitlines()[0].startswith(f"trace {newest}")
        for limit in (1, 5, 20):
            listing = cli("--jaeger", jaeger.query_url, "--service", ORDERED_SERVICE, "--limit", str(limit),
                          "--width", "120")
            assert listing.returncode == 0, listing.stderr
            assert [line.split()[1] for line in listing.stdout.splitlines()[1:]] == newest_first[:limit]
        # The default window (1h) leaves out the 3-hour-old trace; a 4h one lists it, last.
        hour = cli("--jaeger", jaeger.query_url, "--service", ORDERED_SERVICE, "--limit", "100", "--width", "120").stdout
        assert [line.split()[1] for line in hour.splitlines()[1:]] == newest_first
        four = cli("--jaeger", jaeger.query_url, "--service", ORDERED_SERVICE, "--lookback", "4h", "--limit", "100",
                   "--width", "120")
        assert [line.split()[1] for line in four.stdout.splitlines()[1:]] == [*newest_first, old]
        bad = cli("--jaeger", jaeger.query_url, "--service", ORDERED_SERVICE, "--lookback", "an hour")
        assert bad.returncode == 2 and "invalid lookback 'an hour'" in bad.stderr and "1h" in bad.stderr
    finally:
        jaeger.stop()
