"""Cost: the price table, the span processor over GenAI, trading and HTTP client spans, record_cost,
and budgets at their 80/90/100 % edges. Amounts are checked exactly (Decimal totals) and against
hand-computed values."""

from __future__ import annotations

import datetime as dt
import json
import logging
from decimal import Decimal

import pytest
from meters_support import read_metrics
from opentelemetry.trace import SpanKind

from otel_monitoring.meters import cost as cost_module
from otel_monitoring.meters.budgets import (BudgetTracker, add_budget_listener, remove_budget_listener)
from otel_monitoring.meters.cost import CostMeter, record_cost
from otel_monitoring.meters.cost_processor import CostSpanProcessor
from otel_monitoring.meters.prices import PriceTableError, load_prices
from otel_monitoring.meters.settings import BudgetSpec, parse_budgets


@pytest.fixture
def cost(telemetry):
    meter = CostMeter(telemetry.meter_provider, load_prices())
    telemetry.tracer_provider.add_span_processor(CostSpanProcessor(meter))
    cost_module.install(meter)
    yield meter
    cost_module.install(None)


def span(telemetry, name, attributes, kind=SpanKind.INTERNAL):
    with telemetry.tracer_provider.get_tracer("test").start_as_current_span(name, kind=kind, attributes=attributes):
        pass


def cost_points(telemetry):
    metric = read_metrics(telemetry.metric_reader).get("otel_monitoring.cost")
    return metric


# --- the price table ---

@pytest.mark.parametrize("name, resolved", [
    ("gpt-4o", "gpt-4o"), ("openai/gpt-4o-2024-08-06", "gpt-4o"), ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("us.anthropic.claude-3-5-sonnet-20241022-v2:0", "claude-3-5-sonnet"),
    ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet"), ("models/gemini-1.5-pro-002", "gemini-1.5-pro"),
    ("GPT-4o", "gpt-4o"), ("gpt-4o-audio-preview", None), ("o1-mini", None), ("llama-unknown", None),
])
def test_model_names_resolve_with_provider_prefixes_and_versions(name, resolved):
    assert load_prices().resolve_model(name) == resolved


def test_user_file_overrides_and_extends_the_packaged_table(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"llm": {"gpt-4o": {"input": 2.0, "output": 8.0}, "house-model": {"input": 1, "output": 2}},
                                "aliases": {"prod-chat": "house-model"},
                                "external_apis": {"api.data.test": {"per_call": 0.001, "routes": {"/v1/history": 0.01}}}}))
    table = load_prices(path)
    assert table.llm["gpt-4o"].input == Decimal("2.0") and table.llm["gpt-4o"].cached_input is None
    assert table.resolve_model("prod-chat") == "house-model"
    assert table.llm["claude-3-5-haiku"].output == Decimal("4.00")  # untouched entries stay
    assert table.api_call_price("api.data.test", "/v1/history/btc") == Decimal("0.01")
    assert table.api_call_price("api.data.test", "/v1/historyx") == Decimal("0.001")


@pytest.mark.parametrize("content, expected", [
    ("llm:\n  gpt-x: {input: 1}\n", "llm.gpt-x needs input and output"),
    ("llm:\n  gpt-x: {input: cheap, output: 1}\n", "llm.gpt-x.input = 'cheap' is not a price"),
    ("exchanges:\n  binance: {maker: 0.1, taker: 10}\n", "exchanges.binance has a fee rate of 1 or more"),
    ("exhcanges: {}\n", "unknown section(s) exhcanges"),
    ("aliases: {prod: nowhere}\n", "alias(es) prod point to no model"),
    ("llm: [1, 2\n", "not valid YAML"),
])
def test_bad_price_file_message_names_the_file_the_key_and_the_fix(tmp_path, content, expected):
    path = tmp_path / "prices.yaml"
    path.write_text(content)
    with pytest.raises(PriceTableError) as error:
        load_prices(path)
    assert str(path) in str(error.value) and expected in str(error.value)


def test_missing_price_file_says_how_to_fix():
    with pytest.raises(PriceTableError, match="cannot be read.*OTEL_MONITORING_PRICES"):
        load_prices("/nonexistent/prices.yaml")


# --- GenAI spans ---

def test_genai_span_costs_per_token_type_exactly(telemetry, cost):
    span(telemetry, "chat gpt-4o", {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                    "gen_ai.request.model": "gpt-4o", "gen_ai.response.model": "gpt-4o-2024-08-06",
                                    "gen_ai.usage.input_tokens": 1200, "gen_ai.usage.output_tokens": 350,
                                    "gen_ai.usage.cache_read.input_tokens": 200})
    # 1000 plain input x 2.50 + 200 cached x 1.25 + 350 output x 10.00, per million tokens
    assert cost.totals[("model_inference", "gpt-4o")] == Decimal("0.00625")
    metric = cost_points(telemetry)
    assert metric.unit == "USD"
    base = dict(cost__type="model_inference", cost__category="models", gen_ai__request__model="gpt-4o",
                gen_ai__provider__name="openai")
    assert metric.value(**base, gen_ai__token__type="input") == pytest.approx(0.0025, rel=1e-12)
    assert metric.value(**base, gen_ai__token__type="cached_input") == pytest.approx(0.00025, rel=1e-12)
    assert metric.value(**base, gen_ai__token__type="output") == pytest.approx(0.0035, rel=1e-12)


def test_embeddings_are_priced_per_input_token(telemetry, cost):
    span(telemetry, "embeddings", {"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "text-embedding-3-small",
                                   "gen_ai.usage.input_tokens": 50_000})
    assert cost.totals[("model_inference", "text-embedding-3-small")] == Decimal("0.001")


def test_nested_genai_spans_are_priced_once(telemetry, cost):
    tracer = telemetry.tracer_provider.get_tracer("test")
    usage = {"gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 1000}
    with tracer.start_as_current_span("agent", attributes=usage):
        with tracer.start_as_current_span("chain", attributes=usage):
            with tracer.start_as_current_span("chat gpt-4o-mini", attributes=usage):
                pass
    assert cost.totals[("model_inference", "gpt-4o-mini")] == Decimal("0.00075")  # 0.15 + 0.60 per 1M, once


def test_unknown_model_is_counted_apart_and_warned_once(telemetry, cost, caplog):
    caplog.set_level(logging.WARNING, logger="otel_monitoring.meters.cost")
    for _ in range(3):
        span(telemetry, "chat", {"gen_ai.request.model": "mystery-llm", "gen_ai.usage.input_tokens": 10})
    metrics = read_metrics(telemetry.metric_reader)
    assert "otel_monitoring.cost" not in metrics  # never a silent zero
    unpriced = metrics["otel_monitoring.cost.unpriced"]
    assert unpriced.value(otel_monitoring__cost__unpriced__reason="unknown_model",
                          gen_ai__request__model="mystery-llm") == 3
    warnings = [r for r in caplog.records if "mystery-llm" in r.getMessage()]
    assert len(warnings) == 1 and "OTEL_MONITORING_PRICES" in warnings[0].getMessage()


# --- trading spans ---

ORDER = {"trading.exchange": "binance", "trading.symbol": "BTC/USDT", "trading.order.side": "buy",
         "trading.order.type": "market", "trading.order.amount": 0.5}


def test_reported_fee_in_a_stablecoin_is_the_cost(telemetry, cost):
    span(telemetry, "create_order", {**ORDER, "trading.order.filled": 0.5, "trading.order.average_price": 60000.0,
                                     "trading.order.fee": 30.0, "trading.order.fee_currency": "USDT"})
    assert cost.totals[("execution", "binance")] == Decimal("30")
    assert cost_points(telemetry).value(cost__type="execution", cost__category="trading",
                                        trading__exchange="binance") == 30.0


def test_fee_in_the_base_asset_is_valued_at_the_fill_price(telemetry, cost):
    span(telemetry, "create_order", {**ORDER, "trading.order.filled": 0.5, "trading.order.average_price": 60000.0,
                                     "trading.order.fee": 0.0005, "trading.order.fee_currency": "BTC"})
    assert cost.totals[("execution", "binance")] == Decimal("30")


def test_fee_rate_times_notional_when_no_fee_is_reported(telemetry, cost):
    span(telemetry, "create_order", {**ORDER, "trading.order.filled": 0.5, "trading.order.cost": 30000.0,
                                     "trading.order.fee_rate": 0.00075})
    span(telemetry, "create_order", {**ORDER, "trading.exchange": "kraken", "trading.order.filled": 0.1,
                                     "trading.order.average_price": 50000.0})
    assert cost.totals[("execution", "binance")] == Decimal("22.5")
    assert cost.totals[("execution", "kraken")] == Decimal("20")  # table taker rate 0.4 % of 5000


def test_an_order_seen_again_is_charged_only_the_new_fee(telemetry, cost):
    order = {**ORDER, "trading.order.id": "42", "trading.order.fee_currency": "USDT"}
    span(telemetry, "create_order", {**order, "trading.order.filled": 0.2, "trading.order.fee": 12.0})
    span(telemetry, "fetch_order", {**order, "trading.order.filled": 0.2, "trading.order.fee": 12.0})
    span(telemetry, "fetch_order", {**order, "trading.order.filled": 0.5, "trading.order.fee": 30.0})
    assert cost.totals[("execution", "binance")] == Decimal("30")


def test_quotes_and_unfilled_orders_cost_nothing_and_unknown_exchanges_are_unpriced(telemetry, cost):
    span(telemetry, "fetch_ticker", {"trading.exchange": "binance", "trading.symbol": "BTC/USDT"})
    span(telemetry, "create_order", {**ORDER, "trading.order.filled": 0.0})
    span(telemetry, "create_order", {**ORDER, "trading.exchange": "tinyex", "trading.order.filled": 1.0,
                                     "trading.order.average_price": 10.0})
    assert cost.totals == {}
    assert read_metrics(telemetry.metric_reader)["otel_monitoring.cost.unpriced"].value(
        otel_monitoring__cost__unpriced__reason="unknown_exchange") == 1


# --- HTTP client spans ---

def test_priced_external_api_calls(telemetry, tmp_path):
    path = tmp_path / "prices.yaml"
    path.write_text("external_apis:\n  api.data.test: {per_call: 0.002, routes: {/v1/history: 0.01}}\n")
    meter = CostMeter(telemetry.meter_provider, load_prices(path))
    telemetry.tracer_provider.add_span_processor(CostSpanProcessor(meter))
    http = {"server.address": "api.data.test", "http.request.method": "GET"}
    span(telemetry, "GET", {**http, "url.path": "/v1/quote"}, SpanKind.CLIENT)
    span(telemetry, "GET", {**http, "url.path": "/v1/history/btc"}, SpanKind.CLIENT)
    span(telemetry, "GET", {**http, "server.address": "internal.test"}, SpanKind.CLIENT)  # not priced: free
    span(telemetry, "GET /v1/quote", {**http, "url.path": "/v1/quote"}, SpanKind.SERVER)  # our own server
    assert meter.totals == {("external_api", "api.data.test"): Decimal("0.012")}


# --- record_cost ---

def test_record_cost_sums_exactly_and_maps_friendly_keys(telemetry, cost):
    for _ in range(10):
        record_cost(0.1, "api_call", host="api.example.com", category="market_data")
    assert cost.totals[("api_call", "api.example.com")] == Decimal("1.0")
    point = cost_points(telemetry).value(cost__type="api_call", cost__category="market_data",
                                         server__address="api.example.com")
    assert point == pytest.approx(1.0, rel=1e-12)


def test_record_cost_never_raises_on_bad_input(telemetry, cost, caplog):
    record_cost(float("nan"), "compute")
    record_cost(-1, "compute")
    record_cost("abc", "compute")
    record_cost(0.5, "lunch")  # unknown type: recorded as given, warned once
    assert cost.totals == {("lunch", "other"): Decimal("0.5")}
    assert any("lunch" in r.getMessage() for r in caplog.records)


def test_user_attribute_is_kept_behind_the_cardinality_limit(telemetry):
    meter = CostMeter(telemetry.meter_provider, load_prices(), user_attribute="tenant.id", user_limit=2)
    for tenant in ("a", "b", "c", "d", "a"):
        meter.record(Decimal("1"), "compute", user=tenant)
    points = cost_points(telemetry).points
    assert {p.attributes["tenant.id"]: p.value for p in points} == {"a": 2.0, "b": 1.0, "_other": 2.0}


# --- budgets ---

class Clock:
    def __init__(self, when: dt.datetime):
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now


def test_budget_events_fire_exactly_at_80_90_100_percent_once_to_listeners(telemetry):
    clock = Clock(dt.datetime(2026, 11, 22, 12, 0, tzinfo=dt.timezone.utc))
    budgets = BudgetTracker(parse_budgets("daily:type.model_inference=1,monthly:category.trading=100"), clock=clock)
    meter = CostMeter(telemetry.meter_provider, load_prices(), budgets)
    events = []
    add_budget_listener(events.append)
    try:
        steps = {}
        for step in range(1, 13):
            before = len(events)
            meter.record(Decimal("0.1"), "model_inference")
            meter.record(Decimal("0.1"), "compute")  # matches neither budget
            steps[step] = [e.threshold for e in events[before:]]
    finally:
        remove_budget_listener(events.append)
    # 0.1 x 8 is 80 % exactly (a float sum would reach 0.7999... and miss it)
    assert {s: t for s, t in steps.items() if t} == {8: [0.8], 9: [0.9], 10: [1.0]}
    event = events[0]
    assert (event.budget, event.period, event.cost_type, event.severity) == (
        "daily:type.model_inference", "daily", "model_inference", "warning")
    assert event.period_start == dt.datetime(2026, 11, 22, tzinfo=dt.timezone.utc)
    assert events[2].severity == "critical" and events[2].spent_usd == 1.0


def test_budget_rolls_over_at_utc_midnight_and_month_start():
    clock = Clock(dt.datetime(2026, 11, 30, 23, 59, tzinfo=dt.timezone.utc))
    budgets = BudgetTracker((BudgetSpec("daily", 10.0), BudgetSpec("monthly", 100.0)), clock=clock)
    assert [e.threshold for e in budgets.add(Decimal("9"), "compute", "infrastructure")] == [0.8, 0.9]
    clock.now += 120  # 2026-12-01 00:01
    assert budgets.add(Decimal("8"), "compute", "infrastructure")[0].threshold == 0.8  # daily again, from zero
    assert {row["budget"]: row["spent_usd"] for row in budgets.status()} == {"daily:total": 8.0, "monthly:total": 8.0}


def test_budget_gauges_and_log_record(telemetry):
    from opentelemetry.instrumentation.logging.handler import LoggingHandler

    handler = LoggingHandler(logger_provider=telemetry.logger_provider)
    logging.getLogger("otel_monitoring.budgets").addHandler(handler)
    try:
        budgets = BudgetTracker(parse_budgets("monthly:total=2"))
        budgets.observe(telemetry.meter_provider)
        failing = []

        def broken_listener(event):
            failing.append(event)
            raise RuntimeError("listener bug")

        add_budget_listener(broken_listener)
        try:
            CostMeter(telemetry.meter_provider, load_prices(), budgets).record(Decimal("1.6"), "storage")
        finally:
            remove_budget_listener(broken_listener)
    finally:
        logging.getLogger("otel_monitoring.budgets").removeHandler(handler)
    assert len(failing) == 1  # the listener's exception did not reach record()
    metrics = read_metrics(telemetry.metric_reader)
    assert metrics["otel_monitoring.cost.budget.utilization"].value() == pytest.approx(0.8)
    assert metrics["otel_monitoring.cost.budget.spent"].unit == "USD"
    assert metrics["otel_monitoring.cost.budget.limit"].value(otel_monitoring__budget__name="monthly:total") == 2.0
    records = [r.log_record for r in telemetry.logs() if "otel_monitoring.budget.name" in (r.log_record.attributes or {})]
    assert len(records) == 1
    assert records[0].event_name == "otel_monitoring.budget.threshold_crossed"  # the bridge maps event.name
    attributes = records[0].attributes
    assert attributes["otel_monitoring.budget.threshold"] == 0.8
    assert attributes["otel_monitoring.budget.name"] == "monthly:total"
    assert records[0].severity_text in ("WARN", "WARNING")


@pytest.mark.parametrize("text, message", [
    ("weekly:total=1", "not daily or monthly"), ("daily:type.lunch=1", "is not a cost.type"),
    ("daily:total=0", "above 0"), ("daily:total=1,daily:total=2", "given twice"), ("daily=1", "period:scope=limit"),
])
def test_bad_budget_settings(text, message):
    with pytest.raises(ValueError, match=message):
        parse_budgets(text)


def test_fees_of_a_real_ccxt_client_through_the_instrumentation(telemetry, cost):
    ccxt = pytest.importorskip("ccxt")
    from otel_monitoring.instrumentation.trading.ccxt import CcxtInstrumentor
    from otel_monitoring.examples.exchange_stub import ExchangeStub, point_ccxt_at

    instrumentor = CcxtInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        with ExchangeStub() as stub:
            exchange = point_ccxt_at(ccxt.binance({"apiKey": "k", "secret": "c2VjcmV0", "enableRateLimit": False}),
                                     stub.url)
            exchange.load_markets()
            order = exchange.create_order("BTC/USDT", "market", "buy", 0.01)
            exchange.fetch_order(order["id"], "BTC/USDT")  # the same fill again: not charged twice
            exchange.fetch_ticker("BTC/USDT")
    finally:
        instrumentor.uninstrument()
    fee = Decimal(str(order["fee"]["cost"]))
    assert order["fee"]["currency"] == "USDT" and fee > 0
    fetched = [s for s in telemetry.spans() if s.attributes.get("trading.order.fee") is not None]
    assert len(fetched) == 2  # create_order and fetch_order both report the fee
    assert cost.totals == {("execution", "binance"): fee}


def test_the_tenant_attribute_of_a_span_goes_onto_its_cost(telemetry):
    meter = CostMeter(telemetry.meter_provider, load_prices(), user_attribute="tenant.id", user_limit=10)
    telemetry.tracer_provider.add_span_processor(CostSpanProcessor(meter, user_attribute="tenant.id"))
    span(telemetry, "chat", {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.output_tokens": 100_000,
                             "tenant.id": "acme"})
    assert cost_points(telemetry).value(**{"tenant__id": "acme"}) == pytest.approx(1.0)


EARLY = """
import json, sys
import otel_monitoring
otel_monitoring.record_cost(0.3, "model_inference", model="gpt-4o")  # at import time, before configure()
otel_monitoring.configure(service_name="early", exporter="none", system_metrics=False, budgets="daily:total=1",
                          snapshot_dir=sys.argv[1], alert_routes="log=info")
events = []
otel_monitoring.add_budget_listener(lambda event: events.append((round(event.threshold * 100), event.spent_usd)))
otel_monitoring.record_cost(0.5, "model_inference", model="gpt-4o")
print(json.dumps(events))
"""


def test_a_cost_recorded_before_configure_counts_in_the_cost_and_the_budget(tmp_path):
    """A cost recorded at import time went to the API's no-op meter: $0.50 of $0.80 spent showed as
    50 % of the budget and a $0.50 total. It is kept and counted when configure() starts the meters."""
    import os
    import re
    import subprocess
    import sys
    import textwrap

    from support import REPO, clean_env

    environment = clean_env(PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    directory = tmp_path / "snapshots"
    run = subprocess.run([sys.executable, "-c", textwrap.dedent(EARLY), str(directory)], env=environment,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == [[80, 0.8]]  # $0.30 + $0.50 of $1
    assert "reached 80% of its limit: $0.80 of $1.00" in run.stderr  # the notification (log channel)
    live = json.loads((directory / "metrics_live.json").read_text())
    assert [p["value"] for p in live["counters"]["otel_monitoring.cost"]] == [0.8]
    assert [p["value"] for p in live["gauges"]["otel_monitoring.cost.budget.utilization"]] == [0.8]
    cli = os.path.join(os.path.dirname(sys.executable), "otel-monitoring")
    top = subprocess.run([cli, "top", "--once", "--dir", str(directory)], env=environment, capture_output=True,
                         text=True, timeout=60)
    assert re.search(r"total \$0\.80 · budget daily:total daily 80\.0% \$0\.80 of \$1\.00", top.stdout), top.stdout
    ledger = json.loads((directory / "budgets.json").read_text())
    assert [entry["spent_usd"] for entry in ledger.values()] == ["0.8"]


def test_early_costs_are_not_counted_twice_on_an_sdk_provider_the_application_set(telemetry):
    """With the application's own SDK meter provider set before the cost, the counter has it already:
    the hand-over adds it to the budgets and totals only."""
    early = cost_module._EarlyCostMeter()
    early.record(Decimal("0.25"), "external_api", attributes={"server.address": "api.example.com"})
    meter = CostMeter(telemetry.meter_provider, load_prices(),
                      BudgetTracker([BudgetSpec("daily", 1.0)]))
    early.hand_over(meter)
    assert [p.value for p in cost_points(telemetry).points] == [0.25]
    assert meter.budgets.status()[0]["spent_usd"] == 0.25
    assert meter.totals == {("external_api", "api.example.com"): Decimal("0.25")}
    early.record(Decimal("0.5"), "external_api", attributes={"server.address": "api.example.com"})  # after: forwarded
    assert meter.budgets.status()[0]["spent_usd"] == 0.75
