"""Ground truth: one deterministic workload (workload.py), read back from every path a user reads,
each figure asserted against what the workload really did (truth.py).

Paths: the SDK's OTLP/JSON files; the snapshot files, ``top --once`` and ``report --html``; the real
collector -> Prometheus (SDK metrics, span metrics, recording and alert rules); Jaeger; and every
query of every Grafana dashboard panel, evaluated against that Prometheus. The stack part runs when
the stack programs are built (scripts/build-stack.sh; required under CI), the rest always.
"""

from __future__ import annotations

import contextlib
import glob
import json
import math
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from typing import Any

import pytest

import truth as T
import workload as W
from stackprocs import (AGENT_CONFIG, CONFIG_DIR, _BINARY_ENV, require_binary, start_collector, start_jaeger,
                        start_prometheus, wait_until)
from support import REPO, clean_env

from otel_monitoring.stack import MissingBinary, find_binary
from otel_monitoring.views.overview import build_overview
from otel_monitoring.views.snapshot import read_snapshot_dir

# One workload (and, when built, one stack) for the module: its fixtures take minutes on a busy machine.
pytestmark = pytest.mark.timeout(900)

CLI = [sys.executable, "-m", "otel_monitoring.cli"]
JOB = W.SERVICE


def _built(*names: str) -> bool:
    try:
        for name in names:
            find_binary(name, _BINARY_ENV)
    except MissingBinary:
        return False
    return True


class Stack:
    def __init__(self, jaeger: Any, collector: Any, prometheus: Any):
        self.jaeger, self.collector, self.prometheus = jaeger, collector, prometheus


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """The agent collector and Prometheus (with the shipped rules), and Jaeger, when they are built
    (under CI they must be)."""
    if not _built("otelcol", "prometheus") and not os.environ.get("CI"):
        yield None
        return
    root = tmp_path_factory.mktemp("stack")
    with contextlib.ExitStack() as running:
        jaeger = running.enter_context(start_jaeger(root)) if _built("jaeger") or os.environ.get("CI") else None
        collector = running.enter_context(start_collector(
            AGENT_CONFIG, root, jaeger_endpoint=jaeger.otlp_grpc_endpoint if jaeger else None))
        prometheus = running.enter_context(start_prometheus(root, [collector.prometheus_target]))
        yield Stack(jaeger, collector, prometheus)


class Run:
    def __init__(self, out: str):
        self.out = out
        self.spans = T.read_spans(os.path.join(out, "otlp", "traces.jsonl"))
        self.metrics = T.last_points(os.path.join(out, "otlp", "metrics.jsonl"))
        with open(os.path.join(out, "truth.json"), encoding="utf-8") as handle:
            self.truth = json.load(handle)
        self.snapshot_dir = os.path.join(out, "snapshots")

    def named(self, name: str) -> list[T.Span]:
        return [s for s in self.spans if s.name == name]

    @property
    def fee_usd(self) -> float:
        assert {fee["currency"] for fee in self.truth["order_fees"]} == {"USDT"}  # prices.yaml: 1 USDT = 1.0 USD
        assert len(self.truth["order_fees"]) == W.CALLS["order"]
        return sum(fee["cost"] for fee in self.truth["order_fees"])

    @property
    def llm_calls(self) -> list[dict[str, Any]]:
        """The LLM client calls as the application saw them (tokens from the client's response)."""
        calls = self.truth["llm_calls"]
        assert Counter(c["operation"] for c in calls) == {
            "GET /ask": W.CALLS["ask"], "GET /ask_stream": W.CALLS["ask_stream"],
            f"chat {W.LLM_MODEL}": W.CALLS["lc_chat"], f"chain {W.CHAIN_NAME}": W.CALLS["rag_chain"]}
        return calls

    @property
    def model_cost_usd(self) -> float:
        """Every model call's price: the known-usage chat and the LLM client calls."""
        return W.CHAT_COST_USD + sum(llm_cost(c) for c in self.llm_calls)

    @property
    def tokens(self) -> dict[str, int]:
        return {"input": W.CALLS["chat"] * W.INPUT_TOKENS + sum(c["input"] for c in self.llm_calls),
                "output": W.CALLS["chat"] * W.OUTPUT_TOKENS + sum(c["output"] for c in self.llm_calls)}

    def root_costs(self) -> dict[str, list[float]]:
        """operation -> the cost of each of its root operations that priced something: each chat
        call, each filled order, each LLM call's request, chat or chain."""
        costs: dict[str, list[float]] = defaultdict(list)
        costs[f"chat {W.CHAT_MODEL}"] = [W.CHAT_COST_USD / W.CALLS["chat"]] * W.CALLS["chat"]
        costs["ccxt.create_order"] = [fee["cost"] for fee in self.truth["order_fees"]]
        for call in self.llm_calls:
            costs[call["operation"]].append(llm_cost(call))
        return dict(costs)

    @property
    def round2(self) -> list[T.Span]:
        return [s for s in self.spans if s.start_ns >= self.truth["round2_start_ns"]]


def llm_cost(call: dict[str, Any]) -> float:
    assert call["model"] == W.LLM_MODEL
    return call["input"] * W.LLM_PRICE_INPUT_PER_TOKEN + call["output"] * W.LLM_PRICE_OUTPUT_PER_TOKEN


@pytest.fixture(scope="module")
def run(stack, tmp_path_factory) -> Run:
    out = str(tmp_path_factory.mktemp("ground-truth"))
    args = [sys.executable, os.path.join(os.path.dirname(__file__), "workload.py"), out]
    if stack is not None:
        args += [stack.collector.otlp_grpc_endpoint, stack.prometheus.url]
    result = subprocess.run(args, env=clean_env(), capture_output=True, text=True, timeout=600, cwd=out)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return Run(out)


# --- the SDK's OTLP/JSON files ---

def test_one_logical_call_is_one_span(run):
    expected = T.expected_spans(run.truth)
    counts = Counter(s.name for s in run.spans if s.name in expected)
    assert dict(counts) == expected
    errors = Counter(s.name for s in run.spans if s.error)
    assert {name: errors[name] for name in T.EXPECTED_ERRORS} == T.EXPECTED_ERRORS
    assert not [s for s in run.spans if "/health" in str(s.attributes.get("url.full") or s.attributes.get("http.route") or "")]
    assert not [s for s in run.spans if s.attributes.get("otel_monitoring.operation") == "similarity_search"]
    # FastAPI's own telemetry serves the requests; the contrib instrumentor does not count them again
    assert {s.scope for s in run.spans if s.kind == 2} == {"fastapi"}


def test_chat_spans_carry_the_known_token_usage(run):
    for span in run.named(f"chat {W.CHAT_MODEL}"):
        assert span.attributes["gen_ai.usage.input_tokens"] == W.INPUT_TOKENS
        assert span.attributes["gen_ai.usage.output_tokens"] == W.OUTPUT_TOKENS
        assert span.attributes["gen_ai.request.model"] == W.CHAT_MODEL


def _assert_sdk_histograms(points: dict[str, list[tuple[dict, list[float], list[float]]]], spans: list[T.Span],
                           where: str) -> None:
    """points: {metric: [(attributes, bounds, counts)]}. Every point of the known duration histograms
    holds the spans it counts, each in its duration's bucket; every such span is in some point."""
    for metric, (select, _) in T.HISTOGRAM_TRUTH.items():
        assert points.get(metric), f"{where}: no {metric}"
        # points of one name and attributes from several instrumentations count one set of spans
        merged: dict[str, tuple[dict, list[float], list[float]]] = {}
        for attrs, bounds, counts in points[metric]:
            key = repr(sorted(attrs.items()))
            if key in merged:
                assert merged[key][1] == list(bounds), f"{where} {metric} {attrs}: two bucket layouts"
                counts = [a + b for a, b in zip(merged[key][2], counts)]
            merged[key] = (attrs, list(bounds), list(counts))
        counted = 0
        for attrs, bounds, counts in merged.values():
            selected = select(spans, attrs)
            durations = [s.duration for s in selected]
            T.assert_buckets(bounds, counts, durations, f"{where} {metric} {attrs}", T.tolerance(metric, selected))
            counted += len(durations)
        assert counted == sum(sum(c) for _, _, c in points[metric])


def test_otlp_metrics_file_counts_each_call_in_its_span_bucket(run):
    points = {metric: [(attrs, list(p.explicit_bounds), list(p.bucket_counts)) for attrs, p, _ in found]
              for metric, found in run.metrics.items() if metric in T.HISTOGRAM_TRUTH}
    _assert_sdk_histograms(points, run.spans, "metrics.jsonl")
    units = {metric: found[0][2] for metric, found in run.metrics.items()}
    assert {units[m] for m in T.HISTOGRAM_TRUTH} == {"s"}
    assert "http.server.duration" not in run.metrics and "http.client.duration" not in run.metrics


def _token_sums(points: list[tuple[dict, float]]) -> dict[str, float]:
    sums: dict[str, float] = defaultdict(float)
    for attrs, value in points:
        sums[attrs.get("gen_ai.token.type", "?")] += value
    return dict(sums)


def _cost_by_type(points: list[tuple[dict, float]]) -> dict[str, float]:
    costs: dict[str, float] = defaultdict(float)
    for attrs, value in points:
        costs[attrs["cost.type"]] += value
    return dict(costs)


def test_otlp_metrics_file_has_exact_tokens_and_cost(run):
    tokens = _token_sums([(a, p.sum) for a, p, _ in run.metrics["gen_ai.client.token.usage"]])
    assert tokens == run.tokens  # a langchain chat over the client: the client's tokens, once
    costs = _cost_by_type([(a, p.as_double) for a, p, _ in run.metrics["otel_monitoring.cost"]])
    assert costs == {"model_inference": pytest.approx(run.model_cost_usd, abs=1e-9),
                     "execution": pytest.approx(run.fee_usd, abs=1e-9)}


# --- the snapshot files, top --once and report --html ---

def test_snapshot_counts_buckets_tokens_cost_and_alerts(run):
    with open(os.path.join(run.snapshot_dir, "metrics_live.json"), encoding="utf-8") as handle:
        live = json.load(handle)
    points = {metric: [(e["attributes"], e["bounds"], e["counts"]) for e in entries]
              for metric, entries in live["histograms"].items() if metric in T.HISTOGRAM_TRUTH}
    _assert_sdk_histograms(points, run.spans, "metrics_live.json")
    tokens = _token_sums([(e["attributes"], e["sum"]) for e in live["histograms"]["gen_ai.client.token.usage"]])
    assert tokens == run.tokens
    costs = _cost_by_type([(e["attributes"], e["value"]) for e in live["counters"]["otel_monitoring.cost"]])
    assert costs == {"model_inference": pytest.approx(run.model_cost_usd, abs=1e-9),
                     "execution": pytest.approx(run.fee_usd, abs=1e-9)}
    # The whole run is inside the percentile window: each shown percentile is in the bucket of the
    # true percentile of its spans.
    for metric, entries in live["histograms"].items():
        if metric not in T.HISTOGRAM_TRUTH:
            continue
        for entry in entries:
            selected = T.HISTOGRAM_TRUTH[metric][0](run.spans, entry["attributes"])
            if T.tolerance(metric, selected) != T.EXACT:
                continue  # measured by a library's own clock: its buckets are checked above
            durations = [s.duration for s in selected]
            assert entry["window_count"] == len(durations)
            for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
                shown, true = T.quantile_bucket(entry[label], durations, entry["bounds"], q)
                assert shown == true, (metric, entry["attributes"], label, entry[label], sorted(durations))
    with open(os.path.join(run.snapshot_dir, "alerts.json"), encoding="utf-8") as handle:
        alerts = {a["rule_id"]: a for a in json.load(handle)["alerts"]}
    ratio = run.model_cost_usd / W.MODEL_BUDGET_USD
    for rule in ("daily_cost_near_budget", "daily_cost_over_budget"):  # must fire, with the exact value
        assert alerts[rule]["state"] == "firing" and alerts[rule]["value"] == pytest.approx(ratio, abs=1e-9)
        assert alerts[rule]["unit"] == "1"
    # must not fire: a 5-minute error ratio needs its `for` (3m) first; nothing else is breached
    assert {rule for rule, a in alerts.items() if a["state"] == "firing"} == {"daily_cost_near_budget",
                                                                               "daily_cost_over_budget"}


def _expected_rows(run: Run) -> dict[tuple[str, str], int]:
    """The operations top and the report list, one row each, with their call counts."""
    return {
        ("http.server", "GET /slow"): W.CALLS["slow"], ("http.server", "GET /fast"): W.CALLS["fast"],
        ("http.server", "GET /boom"): W.CALLS["boom"],
        ("langchain", "embeddings"): W.CALLS["retrieve"] + 1,
        ("ccxt", "fetch_ticker"): W.CALLS["ticker"], ("ccxt", "load_markets"): 1 + W.CALLS["feed"],
        ("ccxt", "create_order"): W.CALLS["order"] + W.CALLS["order_refused"],
        ("jobs", "step"): W.CALLS["step"] + W.CALLS["step_fail"],
        ("http.server", "GET /ask"): W.CALLS["ask"], ("http.server", "GET /ask_stream"): W.CALLS["ask_stream"],
        # langchain's chat over the LLM client is one row (the client's span adds none); the known-usage
        # chat, the client-backed chat (alone and in the chain) and the tool loop's fake model's two turns
        ("langchain", "chat"): W.CALLS["chat"] + W.CALLS["lc_chat"] + W.CALLS["rag_chain"] + 2 * W.CALLS["tool"],
        ("langchain", "retriever"): W.CALLS["retrieve"] + W.CALLS["rag_chain"],  # chromadb's query is that retrieval
        ("langchain", "chain"): W.CALLS["rag_chain"] + W.CALLS["tool"],
        ("langchain", "execute_tool"): W.CALLS["tool"],
        ("chromadb", "add"): 2, ("chromadb", "delete"): 1,
        # the LLM client calls made outside langchain (in the API's requests): the client's own row
        ("openai", "chat"): W.CALLS["ask"] + W.CALLS["ask_stream"],
        # outgoing HTTP, one row per method and server: the API calls (no probes) and ccxt's requests
        **Counter(("http.client", f"{s.attributes['http.request.method']} {s.attributes['server.address']}:"
                                  f"{s.attributes['server.port']}")
                  for s in run.spans if s.scope in T.HTTP_CLIENT_SCOPES),
    }


def test_views_show_each_operation_once_with_its_count(run):
    overview = build_overview(read_snapshot_dir(run.snapshot_dir))
    rows = Counter()
    for row in overview.red:
        rows[(row.component, row.operation)] += row.count
    assert dict(rows) == _expected_rows(run)  # no gen_ai.client row, no trading.market_data.age row
    assert len(overview.red) == len(rows)
    assert overview.cost_total_usd == pytest.approx(run.model_cost_usd + run.fee_usd, abs=1e-9)
    rag = {r.label: r.value for r in overview.rag}
    assert rag == {"Tokens input": run.tokens["input"], "Tokens output": run.tokens["output"], "Hit rate": 75.0,
                   "Empty results": 0.0, "Relevance": pytest.approx(sum(max(s) for s in W.RETRIEVAL_SCORES) / 4)}
    trading = {r.label: r.value for r in overview.trading}
    assert trading == {"Orders": W.CALLS["order"] + W.CALLS["order_refused"], "Order success": 100.0,
                       "Amount filled": 100.0, "PnL realized": sum(W.TRADES_USD),
                       "PnL unrealized": W.UNREALIZED_USD, "Signal acc.": 75.0, "Stale symbols": 0}


def test_top_once_prints_the_true_figures(run):
    result = subprocess.run([*CLI, "top", "--once", "--dir", run.snapshot_dir, "--width", "200"],
                            env=clean_env(), capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    table: dict[tuple[str, str], int] = {}
    for line in result.stdout.splitlines():
        match = re.match(r"^(\S+)\s+(.+?)\s{2,}(\d+)\s+", line)
        if match and match.group(1) not in ("COMPONENT", "ALERTS"):
            table[(match.group(1), match.group(2).strip())] = int(match.group(3))
    assert table == _expected_rows(run), result.stdout
    from otel_monitoring.views.formatting import usd

    assert f"model_inference {usd(run.model_cost_usd)}" in result.stdout
    assert f"Tokens input {run.tokens['input']}" in result.stdout
    assert f"Tokens output {run.tokens['output']}" in result.stdout
    # the over-budget alert in the rule's unit (a ratio as %)
    assert f"{run.model_cost_usd / W.MODEL_BUDGET_USD * 100:.1f}% / 100.0%" in result.stdout


def test_report_html_shows_the_true_figures(run, tmp_path):
    html = tmp_path / "report.html"
    result = subprocess.run([*CLI, "report", "--html", str(html), "--dir", run.snapshot_dir],
                            env=clean_env(), capture_output=True, text=True, timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    text = html.read_text(encoding="utf-8")
    from otel_monitoring.views.formatting import usd
    from otel_monitoring.views.report_data import gather_report

    data = gather_report(run.snapshot_dir)
    rows = Counter()
    for row in data.latency:
        rows[(row.component, row.operation)] += row.count
    assert dict(rows) == _expected_rows(run)
    assert usd(run.model_cost_usd) in text
    cards = {c.label: c for c in data.cards}
    # worst p95 is taken among operations with enough calls for a p95 (here: chat, 20 calls)
    assert cards["Worst p95"].detail == "langchain chat"
    for row in data.latency:
        assert f"{row.operation}" in text


# --- the WebSocket feed, on every path ---

# A message's latency is its receipt time minus the event time the server stamped on it, which is
# FEED_LATENCY_S before it sent it: never less than that (event times are whole milliseconds), more by
# the delivery. Counts are exact: every message the server sent and the application received, in one
# feed per round (each with its own client, so its intervals start afresh).
FEED_FLOOR_S = W.FEED_LATENCY_S - 0.001
FEED_MESSAGES = W.FEED_MESSAGES * W.CALLS["feed"]
FEED_INTERVALS = (W.FEED_MESSAGES - 1) * W.CALLS["feed"]
FEED_KEY = {"trading.exchange": "binance", "trading.market_data.channel": "watch_ticker", "trading.symbol": W.SYMBOL}


def _assert_feed_latency(bounds: list[float], counts: list[float], where: str) -> None:
    assert sum(counts) == FEED_MESSAGES, where
    below = sum(c for b, c in zip(bounds, counts) if b < FEED_FLOOR_S)
    assert below == 0, f"{where}: {below} messages counted under the {FEED_FLOOR_S} s they took at least"


def test_feed_messages_and_latency_in_the_files_snapshots_and_views(run):
    def one(points: list, what: str) -> Any:
        found = [p for a, p, _ in points if a == FEED_KEY]
        assert len(found) == 1, (what, [a for a, _, _ in points])
        return found[0]

    assert one(run.metrics["trading.market_data.messages"], "messages").as_int == FEED_MESSAGES
    latency = one(run.metrics["trading.market_data.latency"], "latency")
    _assert_feed_latency(list(latency.explicit_bounds), list(latency.bucket_counts), "metrics.jsonl")
    assert latency.sum >= FEED_MESSAGES * FEED_FLOOR_S
    assert one(run.metrics["trading.market_data.interval"], "interval").count == FEED_INTERVALS
    assert run.metrics["trading.websocket.connections"][0][1].as_double == 0  # closed by the application
    # The stream's own state, collected while it was open, a moment after its last message: LIVE.
    states = {a["trading.market_data.state"]: p.as_int for a, p, _ in run.metrics["trading.market_data.stream.status"]
              if {k: v for k, v in a.items() if k != "trading.market_data.state"} == FEED_KEY}
    assert states == {"LIVE": 1, "DELAYED": 0, "STALE": 0}
    with open(os.path.join(run.snapshot_dir, "metrics_live.json"), encoding="utf-8") as handle:
        live = json.load(handle)
    assert [e["value"] for e in live["counters"]["trading.market_data.messages"]
            if e["attributes"] == FEED_KEY] == [FEED_MESSAGES]
    [entry] = [e for e in live["histograms"]["trading.market_data.latency"] if e["attributes"] == FEED_KEY]
    _assert_feed_latency(entry["bounds"], entry["counts"], "metrics_live.json")
    # what top's and the report's FEEDS section reads
    [feed] = build_overview(read_snapshot_dir(run.snapshot_dir)).feeds
    assert (feed.exchange, feed.channel, feed.symbol, feed.messages) == ("binance", "watch_ticker", W.SYMBOL,
                                                                         FEED_MESSAGES)
    assert feed.p95 >= FEED_FLOOR_S


def test_feed_in_prometheus(run, prom):
    selector = f'job="{JOB}", trading_symbol="{W.SYMBOL}", trading_market_data_channel="watch_ticker"'
    assert _scalar(prom, f"sum(trading_market_data_messages_total{{{selector}}})") == FEED_MESSAGES
    [le_counts] = _le_buckets(prom, "trading_market_data_latency_seconds", selector, []).values()
    assert le_counts[math.inf] == FEED_MESSAGES
    assert max(c for le, c in le_counts.items() if le < FEED_FLOOR_S) == 0
    assert _scalar(prom, f"sum(trading_market_data_interval_seconds_count{{{selector}}})") == FEED_INTERVALS


# --- LLM clients, chains, tools, vector counts, storage: the files, snapshots and views ---

def _children(run: Run, span: T.Span) -> list[T.Span]:
    return sorted((s for s in run.spans if s.parent_id == span.span_id), key=lambda s: s.start_ns)


def test_llm_client_spans_are_one_call_each_and_under_langchain_its_child(run):
    client = [s for s in run.named(T.LLM_CHAT) if not s.scope.startswith("otel_monitoring")]
    ours = [s for s in run.named(T.LLM_CHAT) if s.scope.startswith("otel_monitoring")]
    # one client span per request the model answered, with the tokens the application was given
    assert len(client) == len(run.llm_calls) and all(s.kind == 3 for s in client)
    assert sorted((s.attributes["gen_ai.usage.input_tokens"], s.attributes["gen_ai.usage.output_tokens"])
                  for s in client) == sorted((c["input"], c["output"]) for c in run.llm_calls)
    by_id = {s.span_id: s for s in run.spans}
    parents = Counter(by_id[s.parent_id].name if s.parent_id in by_id else "" for s in client)
    # the API requests are the parents of their calls; langchain's chat is the parent of its client call
    assert parents == {"GET /ask": W.CALLS["ask"], "GET /ask_stream": W.CALLS["ask_stream"],
                       T.LLM_CHAT: W.CALLS["lc_chat"] + W.CALLS["rag_chain"]}
    for span in ours:
        [child] = [c for c in _children(run, span) if c.attributes.get("gen_ai.operation.name") == "chat"]
        assert child in client
        assert (child.attributes["gen_ai.usage.input_tokens"], child.attributes["gen_ai.usage.output_tokens"]) == (
            span.attributes["gen_ai.usage.input_tokens"], span.attributes["gen_ai.usage.output_tokens"])
    # each client call's HTTP request is its child; content capture is off: no prompt on any span
    for span in client:
        assert [c.name for c in _children(run, span)] == ["POST"]
    assert not [s for s in run.spans for v in s.attributes.values() if "order book today" in str(v)]


def test_chain_is_one_trace_and_the_tool_loop_has_its_tool_span(run):
    chains = run.named(f"chain {W.CHAIN_NAME}")
    assert len(chains) == W.CALLS["rag_chain"]
    for chain in chains:
        assert chain.parent_id == "" and chain.attributes["otel_monitoring.chain.name"] == W.CHAIN_NAME
        trace = [s for s in run.spans if s.trace_id == chain.trace_id]
        # chain -> retrieval (its chromadb query is that retrieval) and chat -> client chat -> POST
        assert [c.name for c in _children(run, chain)] == ["retrieval ChromaRetriever", T.LLM_CHAT]
        assert sorted(s.name for s in trace) == sorted([chain.name, "retrieval ChromaRetriever", T.LLM_CHAT,
                                                        T.LLM_CHAT, "POST"])
        [retrieval] = [s for s in trace if s.name == "retrieval ChromaRetriever"]
        assert retrieval.attributes["otel_monitoring.retrieval.documents.count"] == 2
    [agent] = run.named(f"chain {W.TOOL_CHAIN_NAME}")
    # the model asks for the tool, the tool answers, the model answers: in that order, under the chain
    assert [c.name for c in _children(run, agent)] == ["chat", "execute_tool get_price", "chat"]
    [tool] = run.named("execute_tool get_price")
    assert (tool.attributes["gen_ai.operation.name"], tool.attributes["gen_ai.tool.name"],
            tool.attributes["gen_ai.tool.call.id"]) == ("execute_tool", "get_price", "call_1")
    assert "gen_ai.tool.call.arguments" not in tool.attributes  # content capture is off


def test_database_spans_one_per_statement(run):
    db = run.truth["db_path"]
    statements = Counter((s.name, s.attributes.get("db.statement")) for s in run.spans
                         if s.attributes.get("db.system") == "sqlite" and s.name != "connect")
    assert statements == {(f"CREATE {db}", "CREATE TABLE orders (id INTEGER PRIMARY KEY, symbol TEXT)"): 1,
                          (f"INSERT {db}", "INSERT INTO orders (symbol) VALUES (?)"): W.CALLS["db"],
                          (f"SELECT {db}", "SELECT count(*) FROM orders"): W.CALLS["db"]}
    assert not [s for s in run.spans for v in s.attributes.values() if str(v) == W.SYMBOL and "db.system" in s.attributes]


def _per_operation(points: list[tuple[dict, list[float], list[float], float]]) -> dict[str, tuple]:
    return {attrs["operation"]: (bounds, counts, total) for attrs, bounds, counts, total in points}


def _assert_costs_per_operation(found: dict[str, tuple], run: Run, where: str) -> None:
    """Each root operation's summed cost counted once, in the bucket its own cost belongs to."""
    expected = run.root_costs()
    assert set(found) == set(expected), where
    for operation, (bounds, counts, total) in found.items():
        T.assert_buckets(bounds, counts, expected[operation], f"{where} cost per operation {operation}")
        assert total == pytest.approx(sum(expected[operation]), abs=1e-9), (where, operation)


VECTORS_KEY = ("db.system.name", "db.collection.name")


def _expected_vectors(run: Run) -> dict[tuple[str, str], float]:
    return {("langchain_in_memory", "InMemoryVectorStore"): len(W.DOCS),
            **{("chromadb", name): count for name, count in run.truth["vectors"].items()}}


def test_cost_per_operation_and_vector_counts_in_the_files_and_snapshot(run):
    assert run.truth["vectors"] == {W.CHROMA_DOCS: len(W.DOCS), W.CHROMA_SCRATCH: W.SCRATCH_ADDED - W.SCRATCH_DELETED}
    files = _per_operation([(a, list(p.explicit_bounds), list(p.bucket_counts), p.sum)
                            for a, p, _ in run.metrics["otel_monitoring.cost.per_operation"]])
    _assert_costs_per_operation(files, run, "metrics.jsonl")
    vectors = {tuple(a[k] for k in VECTORS_KEY): p.as_int for a, p, _ in run.metrics["otel_monitoring.vector_store.vectors"]}
    assert vectors == _expected_vectors(run)
    with open(os.path.join(run.snapshot_dir, "metrics_live.json"), encoding="utf-8") as handle:
        live = json.load(handle)
    snapshot = _per_operation([(e["attributes"], e["bounds"], e["counts"], e["sum"])
                               for e in live["histograms"]["otel_monitoring.cost.per_operation"]])
    _assert_costs_per_operation(snapshot, run, "metrics_live.json")
    vectors = {tuple(e["attributes"][k] for k in VECTORS_KEY): e["value"]
               for e in live["gauges"]["otel_monitoring.vector_store.vectors"]}
    assert vectors == _expected_vectors(run)


# --- the real collector -> Prometheus ---

def _prom_value(prometheus: Any, expr: str) -> dict[tuple, float]:
    return {tuple(sorted((k, v) for k, v in item["metric"].items() if k not in ("job", "instance"))):
            float(item["value"][1]) for item in prometheus.query(expr)}


def _scalar(prometheus: Any, expr: str) -> float:
    values = list(_prom_value(prometheus, expr).values())
    assert len(values) == 1, (expr, values)
    return values[0]


class PinnedPrometheus:
    """Prometheus' answers at one instant, ``at``: the first evaluation of the stack's rules after
    the last of the workload was scraped. Every query of the module reads that instant, so windowed
    figures (rates, rules, ``$__range`` panels) mean the same thing however long the module runs."""

    def __init__(self, prometheus: Any, at: float):
        self.prometheus, self.at = prometheus, at

    def query(self, expr: str) -> list[dict]:
        return self.prometheus.api("query", query=expr, time=repr(self.at))["result"]

    def api(self, path: str, **params: str) -> Any:
        return self.prometheus.api(path, **params)

    def series_names(self) -> list[str]:
        return self.prometheus.series_names()


@pytest.fixture(scope="module")
def prom(stack, run):
    """Prometheus once everything the workload sent was scraped (the last SDK export and the last
    span-metrics flush: span counts equal the files') and the rules were evaluated over it."""
    if stack is None:
        require_binary("otelcol")  # skips with the build command (fails under CI)
    prometheus = stack.prometheus
    total = len(run.spans)
    wait_until(lambda: _prom_value(prometheus, f'sum(traces_span_metrics_calls_total{{service_name="{JOB}"}})')
               .get((), 0) == total, 120, what=f"span metrics of all {total} spans in Prometheus")
    wait_until(lambda: _prom_value(prometheus, f'sum(otel_monitoring_operation_calls_total{{job="{JOB}"}})')
               .get((), 0) == sum(c for (comp, _), c in _expected_rows(run).items() if comp not in ("http.server", "http.client")),
               120, what="the SDK's last export in Prometheus")
    scraped = float(prometheus.api("query", query="time()")["result"][1])

    def evaluated() -> float | None:
        found = prometheus.query(f'timestamp(service:span_error_ratio:rate5m{{service_name="{JOB}"}})')
        return float(found[0]["value"][1]) if found and float(found[0]["value"][1]) > scraped else None

    return PinnedPrometheus(prometheus, wait_until(evaluated, 120, what="a rule evaluation after the last scrape"))


def _le_buckets(prometheus: Any, metric: str, selector: str, by: list[str]) -> dict[tuple, dict[float, float]]:
    found: dict[tuple, dict[float, float]] = defaultdict(dict)
    for item in prometheus.query(f"sum by ({', '.join([*by, 'le'])}) ({metric}_bucket{{{selector}}})"):
        labels = item["metric"]
        key = tuple(labels.get(b, "") for b in by)
        found[key][float(labels["le"])] = float(item["value"][1])
    return found


def test_span_metrics_count_each_span_in_its_duration_bucket(run, prom):
    buckets = _le_buckets(prom, "traces_span_metrics_duration_seconds", f'service_name="{JOB}"',
                          ["span_name", "span_kind", "status_code"])
    expected: dict[tuple, list[float]] = defaultdict(list)
    for span in run.spans:
        expected[(span.name, span.kind_name, "STATUS_CODE_ERROR" if span.error else "STATUS_CODE_UNSET")].append(span.duration)
    assert set(buckets) == set(expected)
    for key, durations in expected.items():
        T.assert_cumulative_buckets(buckets[key], durations, f"spanmetrics {key}")
    # a 120 ms server span lands in (0.1, 0.2]: the buckets are durations, not nanoseconds
    slow = buckets[("GET /slow", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET")]
    assert 0.1 in slow and 0.2 in slow and slow[0.1] == 0
    calls = _prom_value(prom, f'sum by (span_name) (traces_span_metrics_calls_total{{service_name="{JOB}"}})')
    expected = T.expected_spans(run.truth)
    assert {k[0][1]: v for k, v in calls.items() if k[0][1] in expected} == {k: float(v) for k, v in expected.items()}


def test_prometheus_sdk_histograms_tokens_and_cost(run, prom):
    prom_names = {"otel_monitoring.operation.duration": ("otel_monitoring_operation_duration_seconds",
                                                         ("component", "operation", "outcome", "trading.exchange",
                                                          "trading.order.side", "error.type", "gen_ai.request.model",
                                                          "gen_ai.provider.name", "gen_ai.tool.name")),
                  "gen_ai.client.operation.duration": ("gen_ai_client_operation_duration_seconds",
                                                       ("gen_ai.operation.name", "gen_ai.request.model",
                                                        "gen_ai.provider.name", "openai.response.system_fingerprint")),
                  "http.server.request.duration": ("http_server_request_duration_seconds",
                                                   ("http.route", "http.response.status_code"))}
    for metric, (prom_name, keys) in prom_names.items():
        select = T.HISTOGRAM_TRUTH[metric][0]
        labels = [key.replace(".", "_") for key in keys]
        found = _le_buckets(prom, prom_name, f'job="{JOB}"', labels)
        assert found, prom_name
        for values, le_counts in found.items():
            attrs: dict[str, Any] = {key: value for key, value in zip(keys, values) if value != ""}
            if "http.response.status_code" in attrs:
                attrs["http.response.status_code"] = int(attrs["http.response.status_code"])
            selected = select(run.spans, attrs)
            durations = [s.duration for s in selected]
            assert durations, (prom_name, attrs)
            T.assert_cumulative_buckets(le_counts, durations, f"Prometheus {prom_name} {attrs}",
                                        T.tolerance(metric, selected))
    # the stable HTTP server duration, in seconds, with status-code labels
    status = _prom_value(prom, f'sum by (http_route, http_response_status_code) '
                               f'(http_server_request_duration_seconds_count{{job="{JOB}"}})')
    assert {(dict(k)["http_route"], dict(k)["http_response_status_code"]): v for k, v in status.items()} == {
        ("/slow", "200"): W.CALLS["slow"], ("/fast", "200"): W.CALLS["fast"], ("/boom", "500"): W.CALLS["boom"],
        ("/ask", "200"): W.CALLS["ask"], ("/ask_stream", "200"): W.CALLS["ask_stream"]}
    # token usage with input and output apart, and the exact cost
    tokens = _prom_value(prom, f'sum by (gen_ai_token_type) (gen_ai_client_token_usage_sum{{job="{JOB}"}})')
    assert {dict(k)["gen_ai_token_type"]: v for k, v in tokens.items()} == run.tokens
    cost = _prom_value(prom, f'sum by (cost_type) (otel_monitoring_cost_USD_total{{job="{JOB}"}})')
    assert {dict(k)["cost_type"]: v for k, v in cost.items()} == {
        "model_inference": pytest.approx(run.model_cost_usd, abs=1e-9), "execution": pytest.approx(run.fee_usd, abs=1e-9)}
    by_token = _prom_value(prom, f'sum by (gen_ai_token_type) (otel_monitoring_cost_USD_total{{job="{JOB}", cost_type="model_inference"}})')
    assert {dict(k)["gen_ai_token_type"]: v for k, v in by_token.items()} == {
        "input": pytest.approx(W.CALLS["chat"] * W.INPUT_TOKENS * W.PRICE_INPUT_PER_TOKEN + sum(
            c["input"] for c in run.llm_calls) * W.LLM_PRICE_INPUT_PER_TOKEN, abs=1e-9),
        "output": pytest.approx(W.CALLS["chat"] * W.OUTPUT_TOKENS * W.PRICE_OUTPUT_PER_TOKEN + sum(
            c["output"] for c in run.llm_calls) * W.LLM_PRICE_OUTPUT_PER_TOKEN, abs=1e-9)}


def test_prometheus_cost_per_operation_vector_counts_and_storage_spans(run, prom):
    found = {}
    for (operation,), le_counts in _le_buckets(prom, "otel_monitoring_cost_per_operation_USD", f'job="{JOB}"',
                                               ["operation"]).items():
        found[operation] = le_counts
    expected = run.root_costs()
    assert set(found) == set(expected)
    for operation, le_counts in found.items():
        T.assert_cumulative_buckets(le_counts, expected[operation], f"Prometheus cost per operation {operation}")
    sums = _prom_value(prom, f'sum by (operation) (otel_monitoring_cost_per_operation_USD_sum{{job="{JOB}"}})')
    assert {dict(k)["operation"]: v for k, v in sums.items()} == {
        operation: pytest.approx(sum(costs), abs=1e-9) for operation, costs in expected.items()}
    vectors = _prom_value(prom, f'otel_monitoring_vector_store_vectors{{job="{JOB}"}}')
    assert {(dict(k)["db_system_name"], dict(k)["db_collection_name"]): v for k, v in vectors.items()} == \
        _expected_vectors(run)
    # storage timings come from the spans: spanmetrics counts each statement once, in its bucket
    db = run.truth["db_path"]
    statements = {"connect": 1 + W.CALLS["db"], f"CREATE {db}": 1, f"INSERT {db}": W.CALLS["db"],
                  f"SELECT {db}": W.CALLS["db"]}
    calls = _prom_value(prom, f'sum by (span_name) (traces_span_metrics_calls_total{{service_name="{JOB}", '
                              f'span_kind="SPAN_KIND_CLIENT"}})')
    assert {name: v for name, v in ((dict(k)["span_name"], v) for k, v in calls.items()) if name in statements} == statements
    buckets = _le_buckets(prom, "traces_span_metrics_duration_seconds", f'service_name="{JOB}"', ["span_name"])
    for name in statements:
        T.assert_cumulative_buckets(buckets[(name,)], [s.duration for s in run.named(name)], f"spanmetrics {name}")


def test_recording_and_alert_rules(run, prom):
    # recording rules: the p95 of server and internal spans over the last 5 minutes (the whole
    # workload), in the bucket of the spans' true p95
    p95 = _prom_value(prom, f'service:span_duration_seconds:p95_5m{{service_name="{JOB}"}}')
    assert len(p95) == 1
    value = list(p95.values())[0]
    durations = [s.duration for s in run.spans if s.kind in (1, 2)]
    bounds = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]
    shown, true = T.quantile_bucket(value, durations, bounds, 0.95)
    assert shown == true, (value, sorted(durations))
    ratio = _prom_value(prom, f'service:span_error_ratio:rate5m{{service_name="{JOB}"}}')
    errors = [s for s in run.spans if s.error]
    assert list(ratio.values())[0] == pytest.approx(len(errors) / len(run.spans), rel=1e-6)

    # alert rules: the budget overrun fires with its exact value; nothing else fires
    def alerts() -> dict[str, dict]:
        return {a["labels"]["alertname"]: a for a in prom.api("alerts")["alerts"]
                if a["labels"].get("job", JOB) == JOB or a["labels"].get("service_name") == JOB}

    firing = wait_until(lambda: (lambda a: a if {n for n, x in a.items() if x["state"] == "firing"} >= {
        "daily_cost_near_budget", "daily_cost_over_budget"} else None)(alerts()), 120, what="the budget alerts firing")
    # must fire (no `for`), with the exact value
    for name in ("daily_cost_near_budget", "daily_cost_over_budget"):
        assert float(firing[name]["value"]) == pytest.approx(run.model_cost_usd / W.MODEL_BUDGET_USD, abs=1e-9)
    # must not fire: no day of health history yet; market data fetched seconds ago; accuracy 0.75 >= 0.7
    assert not {"low_uptime", "stale_market_data", "low_signal_accuracy"} & set(firing)
    # the error-ratio alerts whose threshold the true ratio exceeds are pending (then firing after
    # their `for`) with the true ratio, at the same evaluation as the recording rules; the others are not
    true_ratio = len(errors) / len(run.spans)
    thresholds = {"ServiceErrorRateHigh": 0.01, "ServiceErrorRateCritical": 0.05}
    assert not any(abs(true_ratio - t) < 1e-3 for t in thresholds.values()), "the workload's ratio sits on a threshold"
    active = {item["metric"]["alertname"] for item in prom.query(f'ALERTS{{service_name="{JOB}"}}')}
    assert active & set(thresholds) == {name for name, t in thresholds.items() if true_ratio > t}
    for threshold in thresholds.values():
        found = _prom_value(prom, f'service:span_error_ratio:rate5m{{service_name="{JOB}"}} > {threshold}')
        assert list(found.values()) == ([pytest.approx(true_ratio, rel=1e-6)] if true_ratio > threshold else [])


def test_jaeger_has_every_span_and_the_token_attributes(run, stack, prom):
    if stack.jaeger is None:
        require_binary("jaeger")
    jaeger = stack.jaeger

    def spans_in_jaeger() -> Counter | None:
        traces = jaeger.traces(JOB, limit=1000)
        found = Counter(span["operationName"] for trace in traces for span in trace["spans"])
        return found if sum(found.values()) == len(run.spans) else None

    found = wait_until(spans_in_jaeger, 120, what="every span in Jaeger")
    assert found == Counter(s.name for s in run.spans)
    traces = jaeger.traces(JOB, limit=1000, operation=f"chat {W.CHAT_MODEL}")
    chats = [span for trace in traces for span in trace["spans"] if span["operationName"] == f"chat {W.CHAT_MODEL}"]
    assert len(chats) == W.CALLS["chat"]
    for span in chats:
        tags = {tag["key"]: tag["value"] for tag in span["tags"]}
        assert tags["gen_ai.usage.input_tokens"] == W.INPUT_TOKENS
        assert tags["gen_ai.usage.output_tokens"] == W.OUTPUT_TOKENS
    # the same trees: every span's parent in Jaeger is its parent in the files (chains, the LLM
    # client under langchain and under the API requests, the tool loop)
    for name in (f"chain {W.CHAIN_NAME}", f"chain {W.TOOL_CHAIN_NAME}", "GET /ask"):
        for file_root in run.named(name):
            trace = jaeger.trace(file_root.trace_id)
            parents = {span["spanID"]: next((r["spanID"] for r in span.get("references", [])
                                             if r["refType"] == "CHILD_OF"), "") for span in trace["spans"]}
            assert parents == {s.span_id: s.parent_id for s in run.spans if s.trace_id == file_root.trace_id}, name
    # traces --errors asks Jaeger for the error tag: the error traces, however many came after them
    result = subprocess.run([*CLI, "traces", "--jaeger", jaeger.query_url, "--service", JOB, "--errors",
                             "--limit", "3", "--width", "200"], env=clean_env(), capture_output=True, text=True,
                            timeout=120, cwd=REPO)
    assert result.returncode == 0, result.stderr
    error_traces = {s.trace_id for s in run.spans if s.error}
    assert sum(1 for trace_id in error_traces if trace_id in result.stdout) == min(3, len(error_traces))


# --- every Grafana panel query, against that Prometheus ---

# Panels that return nothing for this workload, and why (each must be named here, with the reason).
EMPTY_PANELS = {
    "Collector: spans accepted / refused / export failed": "the collector's own metrics are not scraped here "
                                                          "(only its exporter: the otel-collector job)",
    "GenAI errors by type": "no GenAI call failed",
    "Cost per signal by strategy": "the workload's signals are not in traces with priced spans",
    "Feed errors by ccxt error class": "no feed failed",
    "Gaps and streams under their minimum rate": "no gap, and no minimum rate configured",
    "WebSocket connections, reconnects, disconnects": "the connections query answers (0 open: closed by the "
                                                      "application); no connection dropped or reconnected",
}


def _panels() -> list[tuple[str, str, str]]:
    found = []

    def walk(panels: list[dict], dashboard: str) -> None:
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((dashboard, panel.get("title", "?"), target["expr"]))
            walk(panel.get("panels", []), dashboard)

    for path in sorted(glob.glob(os.path.join(CONFIG_DIR, "grafana", "dashboards", "*.json"))):
        with open(path, encoding="utf-8") as handle:
            walk(json.load(handle).get("panels", []), os.path.basename(path))
    return found


def _grafana_expr(expr: str) -> str:
    """A panel's query as Grafana sends it for this service over the last 5 minutes."""
    for variable, value in (("$__rate_interval", "5m"), ("$__interval", "15s"), ("$__range", "5m"),
                            ("${service}", JOB), ("$service", JOB), ("${job}", JOB), ("$job", JOB)):
        expr = expr.replace(variable, value)
    return expr


def test_every_grafana_panel_query_returns_the_workload(run, prom):
    assert len(_panels()) > 40
    empty, answered = [], {}
    for dashboard, title, expr in _panels():
        values = [float(item["value"][1]) for item in prom.query(_grafana_expr(expr))]
        finite = [v for v in values if math.isfinite(v)]
        if finite:
            answered[(dashboard, title, expr)] = finite
        else:
            empty.append(title)
    unexplained = sorted(set(empty) - set(EMPTY_PANELS))
    assert not unexplained, f"panels with nothing for the workload and no reason given: {unexplained}"
    stale_reasons = sorted(t for t in set(EMPTY_PANELS) & {t for _, t, _ in answered} if t not in empty)
    assert not stale_reasons, f"panels listed as empty that answer: {stale_reasons}"
    # the figures that are not rates are the truth
    by_title = defaultdict(list)
    for (_, title, _), values in answered.items():
        by_title[title].append(values)
    assert sorted(by_title["Budget spent vs limit"][0] + by_title["Budget spent vs limit"][1]) == [
        pytest.approx(W.MODEL_BUDGET_USD, abs=1e-9), pytest.approx(run.model_cost_usd, abs=1e-9)]
    assert by_title["Spend in range (USD)"] == [[pytest.approx(run.model_cost_usd + run.fee_usd, rel=1e-6)]]
    assert by_title["Budget used"][0] == [pytest.approx(run.model_cost_usd / W.MODEL_BUDGET_USD, abs=1e-9)]
    assert by_title["Signal accuracy / win rate"] == [[0.75], [0.5]]
    assert by_title["Profit factor"] == [[2.5]]
    assert by_title["Realized / unrealized PnL"] == [[sum(W.TRADES_USD)], [W.UNREALIZED_USD]]
    assert by_title["Exposure"] == [[W.EXPOSURE_USD]]
    assert by_title["Retrieval hit rate / empty rate"] == [[0.75], [0.0]]
    assert by_title["Market data staleness"][0][0] < 600  # fetched seconds ago: LIVE
    costs = run.root_costs()
    [means, totals] = by_title["Cost per request by operation (in range)"]
    assert sorted(means) == pytest.approx(sorted(sum(c) / len(c) for c in costs.values()), rel=1e-9, abs=1e-12)
    assert sorted(totals) == pytest.approx(sorted(sum(c) for c in costs.values()), rel=1e-9, abs=1e-12)
    [vectors] = by_title["Vectors per collection"]
    assert sorted(vectors) == sorted(_expected_vectors(run).values())


# --- the metric reference ---

# Documented metrics the workload does not produce, and why.
NOT_PRODUCED = {
    "otel_monitoring.cost.unpriced": "every cost of the workload is priced",
    **{name: "no minimum message rate is configured for the feed" for name in (
        "trading.market_data.rate", "trading.market_data.below_min_rate")},
    **{name: "the feed's connections end by the application's close(): none drops or fails" for name in (
        "trading.websocket.reconnects", "trading.websocket.disconnects", "trading.websocket.errors")},
    "trading.order.partial_fills": "the stub fills market orders whole",
    "trading.signal.cost": "the workload's signals are not in traces with priced spans",
    "traces.span.metrics.calls": "made by the collector: checked against Prometheus below",
    "traces.span.metrics.duration": "made by the collector: checked against Prometheus below",
    "traces.span.metrics.duration.milliseconds": "made by the collector for Jaeger, Prometheus only: checked below",
    "otel_monitoring.log.records": "made by the collector from logs: checked against Prometheus below",
    "otel_monitoring.log.records.error": "made by the collector from logs: checked against Prometheus below",
}


def _instrument(point_kind: str, monotonic: Any) -> str:
    if point_kind == "sum":
        return "counter" if monotonic else "updowncounter"
    return point_kind


def test_metric_reference_is_what_the_workload_produced(run):
    from otel_monitoring.metric_reference import METRICS, markdown

    with open(os.path.join(REPO, "docs", "metrics.md"), encoding="utf-8") as handle:
        assert handle.read() == markdown(), "regenerate: python -m otel_monitoring.metric_reference > docs/metrics.md"
    documented = {m.name: m for m in METRICS}
    produced: dict[str, tuple[str, str, set[str]]] = {}
    from support import read_otlp_file

    for request in read_otlp_file(os.path.join(run.out, "otlp", "metrics.jsonl"), "metrics"):
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    data = getattr(metric, kind)
                    instrument = _instrument(kind, getattr(data, "is_monotonic", None))
                    keys = produced.setdefault(metric.name, (instrument, metric.unit, set()))[2]
                    for point in data.data_points:
                        keys.update(kv.key for kv in point.attributes)
    undocumented = sorted(set(produced) - set(documented))
    assert not undocumented, f"metrics the workload produced that docs/metrics.md does not list: {undocumented}"
    for name, (instrument, unit, keys) in produced.items():
        doc = documented[name]
        assert (doc.instrument, doc.unit) == (instrument, unit), name
        assert keys <= set(doc.attributes), (name, sorted(keys - set(doc.attributes)))
    missing = sorted(set(documented) - set(produced) - set(NOT_PRODUCED))
    assert not missing, f"documented metrics the workload did not produce, with no reason given: {missing}"
    assert not set(NOT_PRODUCED) & set(produced), "a metric listed as not produced was produced: drop its reason"


def test_metric_reference_names_what_prometheus_shows(run, prom):
    from otel_monitoring.metric_reference import METRICS

    exposed = set(prom.series_names())
    produced = set(run.metrics) | {"traces.span.metrics.calls", "traces.span.metrics.duration",
                                   "traces.span.metrics.duration.milliseconds",
                                   "otel_monitoring.log.records"}
    wrong = []
    for metric in METRICS:
        if metric.name not in produced:
            continue
        name = metric.prometheus_name + ("_bucket" if metric.instrument == "histogram" else "")
        if name not in exposed:
            wrong.append((metric.name, name, sorted(n for n in exposed if n.startswith(metric.name.replace(".", "_")))))
    assert not wrong, wrong
