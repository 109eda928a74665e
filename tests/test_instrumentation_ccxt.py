"""ccxt: real Binance and Kraken clients, sync and async, over real HTTP to the exchange stub on 127.0.0.1."""

from __future__ import annotations

import asyncio

import ccxt
import ccxt.async_support as ccxt_async
import pytest
from opentelemetry.trace import SpanKind, StatusCode

from otel_monitoring.instrumentation.trading.ccxt import METHODS, CcxtInstrumentor, exchange_classes
from otel_monitoring.examples.exchange_stub import ExchangeStub, point_ccxt_at

CONFIG = {"apiKey": "key", "secret": "c2VjcmV0LXNlY3JldA==", "enableRateLimit": False}


@pytest.fixture
def stub():
    with ExchangeStub() as running:
        yield running


@pytest.fixture
def instrumented(telemetry):
    instrumentor = CcxtInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    yield instrumentor
    instrumentor.uninstrument()


def spans_named(telemetry, name):
    return [s for s in telemetry.spans() if s.name == name]


def test_sync_binance_orders_and_market_data(telemetry, instrumented, stub):
    exchange = point_ccxt_at(ccxt.binance(dict(CONFIG)), stub.url)
    ticker = exchange.fetch_ticker("BTC/USDT")
    order = exchange.create_order("BTC/USDT", "market", "buy", 0.01)
    exchange.fetch_order_book("BTC/USDT", 5)
    exchange.fetch_balance()

    (create,) = spans_named(telemetry, "ccxt.create_order")
    attributes = create.attributes
    assert create.kind is SpanKind.CLIENT
    assert attributes["trading.exchange"] == "binance"
    assert attributes["trading.symbol"] == "BTC/USDT"
    assert attributes["trading.order.side"] == "buy"
    assert attributes["trading.order.type"] == "market"
    assert attributes["trading.order.amount"] == 0.01
    assert attributes["trading.order.id"] == order["id"]
    assert attributes["trading.order.status"] == "closed"
    assert attributes["trading.order.filled"] == pytest.approx(0.01)
    assert attributes["trading.order.cost"] == pytest.approx(order["cost"])
    assert attributes["trading.order.fee"] == pytest.approx(order["fee"]["cost"])
    assert attributes["trading.order.fee_currency"] == "USDT"
    assert attributes["trading.order.average_price"] == pytest.approx(order["average"])

    (fetch,) = spans_named(telemetry, "ccxt.fetch_ticker")
    assert 0 <= fetch.attributes["trading.market_data.age"] < 5
    assert ticker["last"] > 0
    # load_markets ran inside the first call: a child span of it, not a second root.
    (markets,) = spans_named(telemetry, "ccxt.load_markets")
    assert markets.parent.span_id == fetch.context.span_id

    duration = telemetry.metrics()["otel_monitoring.operation.duration"]
    create_point = next(p for p in duration if p.attributes["operation"] == "create_order")
    assert dict(create_point.attributes) == {"domain": "trading", "component": "ccxt", "operation": "create_order",
                                             "trading.exchange": "binance", "trading.order.side": "buy",
                                             "outcome": "success"}
    from otel_monitoring.meters.trading import current_trading_kpis

    assert ("BTC/USDT", "binance") in current_trading_kpis().staleness()  # fed to the freshness KPI
    ages = telemetry.metrics()["trading.market_data.age"]
    assert {p.attributes["trading.market_data.type"] for p in ages} == {"ticker"}  # binance books carry no timestamp
    assert sum(p.count for p in ages) == 1


def test_exchange_errors_are_recorded_by_ccxt_class(telemetry, instrumented, stub):
    exchange = point_ccxt_at(ccxt.binance(dict(CONFIG)), stub.url)
    exchange.load_markets()
    with pytest.raises(ccxt.InsufficientFunds):
        exchange.create_order("BTC/USDT", "market", "buy", 1000)
    stub.fail_next(1)
    with pytest.raises(ccxt.DDoSProtection):
        exchange.fetch_ticker("BTC/USDT")
    (create,) = spans_named(telemetry, "ccxt.create_order")
    assert create.status.status_code is StatusCode.ERROR
    assert create.attributes["error.type"] == "InsufficientFunds"
    errors = {(p.attributes["operation"], p.attributes["error.type"]): p.value
              for p in telemetry.metrics()["otel_monitoring.operation.errors"]}
    assert errors[("create_order", "InsufficientFunds")] == 1
    assert errors[("fetch_ticker", "DDoSProtection")] == 1


def test_async_kraken(telemetry, instrumented, stub):
    async def run():
        exchange = point_ccxt_at(ccxt_async.kraken(dict(CONFIG)), stub.url)
        try:
            await exchange.fetch_ticker("BTC/USD")
            order = await exchange.create_order("BTC/USD", "limit", "sell", 0.01, 70000)
            await exchange.cancel_order(order["id"], "BTC/USD")
            with pytest.raises(ccxt.InsufficientFunds):
                await exchange.create_order("BTC/USD", "market", "buy", 1000)
            return order
        finally:
            await exchange.close()

    order = asyncio.run(run())
    creates = spans_named(telemetry, "ccxt.create_order")
    assert [s.attributes["trading.exchange"] for s in creates] == ["kraken", "kraken"]
    assert creates[0].attributes["trading.async"] is True
    assert creates[0].attributes["trading.order.id"] == order["id"]
    assert creates[0].attributes["trading.order.price"] == 70000
    assert creates[1].attributes["error.type"] == "InsufficientFunds"
    (cancel,) = spans_named(telemetry, "ccxt.cancel_order")
    assert cancel.attributes["trading.order.id"] == order["id"]
    ages = telemetry.metrics().get("trading.market_data.age", [])
    # Kraken tickers have no exchange timestamp; its order book neither was fetched: nothing recorded.
    assert not [p for p in ages if p.attributes["trading.exchange"] == "kraken"]


def test_every_exchange_class_defining_a_method_is_wrapped_and_uninstrument_restores_it(telemetry, stub):
    classes = exchange_classes(ccxt) + exchange_classes(ccxt_async)
    before = {(klass, name): vars(klass)[name] for klass in classes for name in METHODS if name in vars(klass)}
    assert len({klass for klass, _ in before}) > 100
    instrumentor = CcxtInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider)
    try:
        assert instrumentor.wrapped_count == len(before)
        changed = [key for key, original in before.items() if vars(key[0])[key[1]] is original]
        assert changed == []
    finally:
        instrumentor.uninstrument()
    restored = [key for key, original in before.items() if vars(key[0])[key[1]] is not original]
    assert restored == []
    # And nothing is traced any more.
    exchange = point_ccxt_at(ccxt.binance(dict(CONFIG)), stub.url)
    exchange.fetch_ticker("BTC/USDT")
    assert telemetry.spans() == []


def test_the_http_request_of_an_order_is_its_child_sync_and_async(telemetry, instrumented, stub):
    import os

    from otel_monitoring.config import load_settings
    from otel_monitoring.instrumentation.api import ApiInstrumentor

    ApiInstrumentor().instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider,
                                 settings=load_settings())
    try:
        sync = point_ccxt_at(ccxt.binance(dict(CONFIG)), stub.url)
        sync.load_markets()
        sync.create_order("BTC/USDT", "market", "buy", 0.01)

        async def run():
            exchange = point_ccxt_at(ccxt_async.kraken(dict(CONFIG)), stub.url)
            try:
                await exchange.load_markets()
                await exchange.create_order("BTC/USD", "market", "buy", 0.01)
            finally:
                await exchange.close()

        asyncio.run(run())
    finally:
        ApiInstrumentor().uninstrument()
        os.environ.pop("OTEL_PYTHON_EXCLUDED_URLS", None)
    spans = telemetry.spans()
    for order in spans_named(telemetry, "ccxt.create_order"):
        children = [s for s in spans if s.parent is not None and s.parent.span_id == order.context.span_id]
        assert [c.attributes.get("http.request.method", c.attributes.get("http.method")) for c in children] == ["POST"], \
            order.attributes["trading.exchange"]
