"""WebSocket market data: a real ccxt.pro Binance client against a local server speaking Binance's
stream protocol on 127.0.0.1, its REST calls against the exchange stub. Every count, bucket and
state below is what the server really sent; time comes from a controllable clock (the server's
event times and the instrumentation's receipt times), so nothing depends on the machine's speed.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("ccxt")
import ccxt.pro
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from otel_monitoring.examples.exchange_stub import ExchangeStub, point_ccxt_at
from otel_monitoring.examples.exchange_ws_stub import (
    FUTURES_USER_DATA,
    USER_DATA,
    BinanceStreamStub,
    point_ccxt_pro_at,
)
from otel_monitoring.config import load_settings
from otel_monitoring.instrumentation.trading.ccxt import CcxtInstrumentor
from otel_monitoring.local.engine import AlertEngine
from otel_monitoring.local.rules import load_rules
from otel_monitoring.local.snapshot import points_from_metrics_data
from otel_monitoring.meters import trading
from otel_monitoring.meters.cost import CostMeter
from otel_monitoring.meters.cost_processor import CostSpanProcessor
from otel_monitoring.meters.prices import load_prices

WAIT = 30.0  # generous bound for conditions that normally hold within milliseconds


class Clock:
    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Env:
    def __init__(self, clock: Clock, reader: InMemoryMetricReader, spans: InMemorySpanExporter,
                 rest: ExchangeStub, streams: BinanceStreamStub, instrumentor: CcxtInstrumentor):
        self.clock, self.reader, self.spans = clock, reader, spans
        self.rest, self.streams, self.instrumentor = rest, streams, instrumentor

    def metrics(self) -> dict[str, list[Any]]:
        found: dict[str, list[Any]] = {}
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    found.setdefault(metric.name, []).extend(metric.data.data_points)
        return found

    def value(self, name: str, **attributes: Any) -> Any:
        points = [p for p in self.metrics().get(name, []) if all(p.attributes.get(k.replace("__", ".")) == v
                                                                 for k, v in attributes.items())]
        return points

    def rest_exchange(self) -> Any:
        return point_ccxt_at(ccxt.binance({"apiKey": "k", "secret": "s", "enableRateLimit": False}), self.rest.url)

    def exchange(self) -> Any:
        return point_ccxt_pro_at(ccxt.pro.binance({"enableRateLimit": False}), self.rest.url, self.streams.url)


@pytest.fixture
def env():
    clock = Clock()
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    cost = CostMeter(meter_provider, load_prices())
    tracer_provider.add_span_processor(CostSpanProcessor(cost))
    kpis = trading.TradingKPIs(meter_provider, clock=clock)
    trading.install(kpis)
    settings = load_settings({"stream_live_seconds": 2.0, "stream_stale_seconds": 5.0,
                              "stream_min_rates": "watch_ticker=0.5"}, environ={})
    instrumentor = CcxtInstrumentor()
    instrumentor.instrument(tracer_provider=tracer_provider, meter_provider=meter_provider,
                            settings=settings, clock=clock)
    rest = ExchangeStub().start()
    streams = BinanceStreamStub(clock=clock).start()
    try:
        env = Env(clock, reader, spans, rest, streams, instrumentor)
        env.tracer = tracer_provider.get_tracer("test")
        env.providers = {"tracer_provider": tracer_provider, "meter_provider": meter_provider, "settings": settings,
                         "clock": clock}
        yield env
    finally:
        instrumentor.uninstrument()
        trading.install(None)
        streams.stop()
        rest.stop()


async def until(condition: Any, what: str) -> None:
    for _ in range(int(WAIT / 0.01)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


class Consumer:
    """An application's loop: watch, keep the update, watch again; a dropped connection raises
    ccxt's NetworkError into the loop, which watches again (ccxt reconnects)."""

    def __init__(self, exchange: Any, method: str, symbol: str | None = None):
        self.exchange, self.method, self.symbol = exchange, method, symbol
        self.args = () if symbol is None else (symbol,)  # account streams: watch_balance(), watch_positions()
        self.updates: list[Any] = []
        self.errors: list[BaseException] = []
        self.task = asyncio.ensure_future(self._run())

    async def _run(self) -> None:
        while True:
            try:
                self.updates.append(await getattr(self.exchange, self.method)(*self.args))
            except ccxt.NetworkError as error:
                self.errors.append(error)

    async def stop(self) -> None:
        self.task.cancel()
        try:
            await self.task
        except asyncio.CancelledError:
            pass


async def publish(env: Env, consumer: Consumer, market_id: str, kind: str = "ticker", **kwargs: Any) -> None:
    """Send one event and wait until the application has it (so the next one cannot be merged)."""
    before = len(consumer.updates)
    publisher = getattr(env.streams, f"publish_{kind}")
    assert await asyncio.to_thread(publisher, market_id, **kwargs) == 1
    await until(lambda: len(consumer.updates) == before + 1, f"{market_id} {kind} update")


async def subscribed(env: Env, prefix: str) -> None:
    await until(lambda: env.streams.subscribed(prefix) == 1, f"subscription {prefix}")


async def awaiting(exchange: Any, message_hash: str) -> None:
    """Until ccxt waits for ``message_hash`` on one of its connections: an account event sent
    before that would be dropped by ccxt (it resolves only the futures it holds)."""
    await until(lambda: any(message_hash in client.futures for client in list(exchange.clients.values())),
                f"ccxt waiting for {message_hash}")


def test_messages_counted_exactly_latency_in_its_bucket_and_spans_only_for_operations(env):
    async def main() -> None:
        exchange = env.exchange()
        await exchange.load_markets()
        btc = Consumer(exchange, "watch_ticker", "BTC/USDT")
        eth = Consumer(exchange, "watch_ticker", "ETH/USDT")
        trades = Consumer(exchange, "watch_trades", "BTC/USDT")
        candles = Consumer(exchange, "watch_ohlcv", "BTC/USDT")
        await subscribed(env, "btcusdt@t")
        await subscribed(env, "ethusdt@")
        await subscribed(env, "btcusdt@trade")
        await subscribed(env, "btcusdt@kline_1m")
        for _ in range(5):
            env.clock.advance(1.0)
            await publish(env, btc, "BTCUSDT", latency=0.3)  # (0.25, 0.5]
        for _ in range(3):
            env.clock.advance(0.5)
            await publish(env, eth, "ETHUSDT", latency=0.04)  # (0.025, 0.05]
        for _ in range(2):
            await publish(env, trades, "BTCUSDT", kind="trade", latency=0.0)  # [0, 0.005]
        for _ in range(4):
            await publish(env, candles, "BTCUSDT", kind="kline", latency=0.3)
        for consumer in (btc, eth, trades, candles):
            await consumer.stop()
        await exchange.close()

    asyncio.run(main())
    messages = {(p.attributes["trading.symbol"], p.attributes["trading.market_data.channel"]): p.value
                for p in env.metrics()["trading.market_data.messages"]}
    assert messages == {("BTC/USDT", "watch_ticker"): 5, ("ETH/USDT", "watch_ticker"): 3,
                        ("BTC/USDT", "watch_trades"): 2, ("BTC/USDT", "watch_ohlcv"): 4}
    latency = {(p.attributes["trading.symbol"], p.attributes["trading.market_data.channel"]): p
               for p in env.metrics()["trading.market_data.latency"]}
    btc = latency[("BTC/USDT", "watch_ticker")]
    bounds = list(btc.explicit_bounds)
    assert btc.count == 5 and btc.bucket_counts[bounds.index(0.5)] == 5
    assert btc.sum == pytest.approx(1.5, abs=0.01)
    eth = latency[("ETH/USDT", "watch_ticker")]
    assert eth.count == 3 and eth.bucket_counts[bounds.index(0.05)] == 3
    assert latency[("BTC/USDT", "watch_trades")].bucket_counts[0] == 2
    # A candle carries its open time, not the message's: no latency for OHLCV.
    assert ("BTC/USDT", "watch_ohlcv") not in latency
    interval = {p.attributes["trading.symbol"] + " " + p.attributes["trading.market_data.channel"]: p
                for p in env.metrics()["trading.market_data.interval"]}
    # The time between messages of a stream, from the clock: 4 intervals of 1 s, 2 of 0.5 s.
    assert (interval["BTC/USDT watch_ticker"].count, interval["BTC/USDT watch_ticker"].sum) == (4, pytest.approx(4.0))
    assert (interval["ETH/USDT watch_ticker"].count, interval["ETH/USDT watch_ticker"].sum) == (2, pytest.approx(1.0))
    # Spans: one per subscription (first message), one per connection (ccxt's Binance spreads
    # subscriptions over numbered stream URLs: three here), the close; none per message.
    names = sorted(span.name for span in env.spans.get_finished_spans() if not span.name.startswith("ccxt.load"))
    connections = len(env.streams.connection_log)
    assert connections == 4
    assert names == ["ccxt.close", "ccxt.watch_ohlcv", "ccxt.watch_ticker", "ccxt.watch_ticker", "ccxt.watch_trades"] + [
        "ccxt.websocket.connect"] * connections
    first = [s for s in env.spans.get_finished_spans() if s.name == "ccxt.watch_ticker"]
    assert {s.attributes["trading.symbol"] for s in first} == {"BTC/USDT", "ETH/USDT"}
    assert all(s.events[0].name == "first message" for s in first)
    # Closed by the application: the connection is gone and it is no disconnect.
    assert [p.value for p in env.metrics()["trading.websocket.connections"]] == [0]
    assert "trading.websocket.disconnects" not in env.metrics()


def _states(env: Env) -> dict[str, str]:
    return {p.attributes["trading.symbol"]: p.attributes["trading.market_data.state"]
            for p in env.metrics().get("trading.market_data.status", []) if p.value == 1}


def _overview(env: Env, directory: Any) -> Any:
    """What ``otel-monitoring top`` and the report read: metrics_live.json written from the same metrics."""
    import json

    from otel_monitoring.local.snapshot import build_snapshot
    from otel_monitoring.views.overview import build_overview
    from otel_monitoring.views.snapshot import METRICS_FILE, read_snapshot_dir

    document = build_snapshot(points_from_metrics_data(env.reader.get_metrics_data()), env.clock(), 5.0,
                              {"name": "feeds"}, {})
    (directory / METRICS_FILE).write_text(json.dumps(document))
    return build_overview(read_snapshot_dir(str(directory)), now=env.clock())


def test_a_frozen_stream_turns_stale_within_its_threshold_and_the_alert_fires(env, tmp_path):
    rules = [rule for rule in load_rules().rules if rule.id == "market_data_stale"]
    engine = AlertEngine(rules, clock=env.clock)

    async def main() -> None:
        exchange = env.exchange()
        await exchange.load_markets()
        btc = Consumer(exchange, "watch_ticker", "BTC/USDT")
        eth = Consumer(exchange, "watch_ticker", "ETH/USDT")
        await subscribed(env, "btcusdt@")
        await subscribed(env, "ethusdt@")
        for _ in range(8):
            env.clock.advance(0.5)
            await publish(env, btc, "BTCUSDT")
            await publish(env, eth, "ETHUSDT")
        assert _states(env) == {"BTC/USDT": "LIVE", "ETH/USDT": "LIVE"}
        # ETH freezes: the server keeps the connection and says nothing; BTC goes on.
        for step in range(1, 11):
            env.clock.advance(0.5)
            await publish(env, btc, "BTCUSDT")
            states = _states(env)
            silent = step * 0.5
            expected = "LIVE" if silent < 2.0 else "DELAYED" if silent < 5.0 else "STALE"
            assert states == {"BTC/USDT": "LIVE", "ETH/USDT": expected}, silent
            engine.evaluate(points_from_metrics_data(env.reader.get_metrics_data()))
            firing = {a["labels"].get("trading.symbol") for a in engine.alerts() if a["state"] == "firing"}
            assert firing == ({"ETH/USDT"} if silent >= 5.0 else set()), silent
        assert env.streams.subscribed("ethusdt@") == 1 and not eth.task.done()  # open, not failed
        # The operator views: a feed row per stream, ETH STALE and critical; no operation rows.
        overview = _overview(env, tmp_path)
        feeds = {(f.symbol, f.channel): f for f in overview.feeds}
        assert set(feeds) == {("BTC/USDT", "watch_ticker"), ("ETH/USDT", "watch_ticker")}
        assert (feeds["ETH/USDT", "watch_ticker"].messages, feeds["ETH/USDT", "watch_ticker"].freshness) == (8, "STALE")
        assert feeds["ETH/USDT", "watch_ticker"].state.name == "CRITICAL"
        assert (feeds["BTC/USDT", "watch_ticker"].messages, feeds["BTC/USDT", "watch_ticker"].freshness) == (18, "LIVE")
        assert not [row for row in overview.red if "market_data" in row.component + row.operation]
        from rich.console import Console

        from otel_monitoring.views.dashboard import render_frame

        console = Console(width=120, height=None, force_terminal=False)
        with console.capture() as captured:
            console.print(render_frame(overview, 120, None))
        assert "FEEDS" in captured.get() and "ETH/USDT ticker" in captured.get() and "STALE" in captured.get()
        # Below its minimum rate (0.5/s): 8 messages over the first minute, then nothing.
        env.clock.advance(60.0)
        below = {p.attributes["trading.symbol"]: p.value for p in env.metrics()["trading.market_data.below_min_rate"]}
        assert below["ETH/USDT"] == 1
        # It comes back: one gap counted (a pause far above its usual 0.5 s).
        await publish(env, eth, "ETHUSDT")
        gaps = {p.attributes["trading.symbol"]: p.value for p in env.metrics()["trading.market_data.gaps"]}
        assert gaps == {"BTC/USDT": 0, "ETH/USDT": 1}
        assert _states(env)["ETH/USDT"] == "LIVE"
        for consumer in (btc, eth):
            await consumer.stop()
        await exchange.close()

    asyncio.run(main())


def test_dropped_connections_count_reconnects_and_the_fourth_in_an_hour_fires_the_alert(env):
    rules = [rule for rule in load_rules().rules if rule.id == "websocket_disconnects"]
    engine = AlertEngine(rules, clock=env.clock)

    def firing() -> bool:
        engine.evaluate(points_from_metrics_data(env.reader.get_metrics_data()))
        return any(alert["state"] == "firing" for alert in engine.alerts())

    async def main() -> None:
        exchange = env.exchange()
        await exchange.load_markets()
        btc = Consumer(exchange, "watch_ticker", "BTC/USDT")
        await subscribed(env, "btcusdt@")
        await publish(env, btc, "BTCUSDT")
        assert not firing()
        for drop in range(1, 5):
            env.clock.advance(600)  # one drop every 10 minutes
            assert await asyncio.to_thread(env.streams.drop_connections) == 1
            await until(lambda: len(btc.errors) == drop, "the NetworkError of the drop")
            await until(lambda: env.streams.connects == drop + 1 and env.streams.subscribed("btcusdt@") == 1,
                        "the reconnect")
            await publish(env, btc, "BTCUSDT")
            assert firing() == (drop >= 4), drop
        metrics = env.metrics()
        assert [(dict(p.attributes), p.value) for p in metrics["trading.websocket.disconnects"]] == [
            ({"trading.exchange": "binance", "trading.websocket.reason": "server_close"}, 4)]
        assert [(dict(p.attributes), p.value) for p in metrics["trading.websocket.reconnects"]] == [
            ({"trading.exchange": "binance", "trading.websocket.reason": "server_close"}, 4)]
        assert [p.value for p in metrics["trading.websocket.connections"]] == [1]
        errors = [(p.attributes["error.type"], p.value) for p in metrics["trading.websocket.errors"]]
        assert errors == [("NetworkError", 4)]
        assert sum(p.value for p in metrics["trading.market_data.messages"]) == 5
        connects = [s for s in env.spans.get_finished_spans() if s.name == "ccxt.websocket.connect"]
        assert [s.attributes["trading.websocket.reconnect"] for s in connects] == [False, True, True, True, True]
        failed = [s for s in env.spans.get_finished_spans() if s.name == "ccxt.watch_ticker" and s.status.status_code.name == "ERROR"]
        assert len(failed) == 4 and all(s.attributes["error.type"] == "NetworkError" for s in failed)
        await btc.stop()
        await exchange.close()

    asyncio.run(main())


def test_unwatch_ends_the_stream_so_it_never_turns_stale(env):
    async def main() -> None:
        exchange = env.exchange()
        await exchange.load_markets()
        btc = Consumer(exchange, "watch_ticker", "BTC/USDT")
        await subscribed(env, "btcusdt@")
        await publish(env, btc, "BTCUSDT")
        assert _states(env) == {"BTC/USDT": "LIVE"}
        await btc.stop()
        await exchange.un_watch_ticker("BTC/USDT")
        env.clock.advance(3600)
        assert "BTC/USDT" not in _states(env)
        # The counter keeps what the stream delivered.
        assert [p.value for p in env.metrics()["trading.market_data.messages"]] == [1]
        await exchange.close()

    asyncio.run(main())


def test_order_lifecycle_fill_time_partial_fills_and_success_rate(env):
    exchange = env.rest_exchange()
    exchange.load_markets()
    exchange.create_order("BTC/USDT", "market", "buy", 0.01)  # filled at once
    order = exchange.create_order("BTC/USDT", "limit", "buy", 0.01, 60000)  # rests
    env.clock.advance(2.0)
    env.rest.book.fill(order["id"], 0.004)
    assert exchange.fetch_order(order["id"], "BTC/USDT")["filled"] == pytest.approx(0.004)
    exchange.fetch_order(order["id"], "BTC/USDT")  # nothing new: no second partial fill
    env.clock.advance(3.0)
    env.rest.book.fill(order["id"], 0.006)
    assert exchange.fetch_order(order["id"], "BTC/USDT")["status"] == "closed"
    resting = exchange.create_order("BTC/USDT", "limit", "sell", 0.01, 90000)
    exchange.cancel_order(resting["id"], "BTC/USDT")
    metrics = env.metrics()
    assert [p.value for p in metrics["trading.orders.placed"]] == [3]
    assert [p.value for p in metrics["trading.orders.filled"]] == [2]
    assert [p.value for p in metrics["trading.order.partial_fills"]] == [1]
    assert [p.value for p in metrics["trading.order.success_rate"]] == [pytest.approx(2 / 3)]
    fill_time = metrics["trading.order.fill_time"][0]
    # The limit order took 5 s on the clock; the market order the create_order call itself (~0 s).
    assert fill_time.count == 2 and fill_time.max == pytest.approx(5.0, abs=0.5)


def test_cost_per_signal_is_the_fees_of_the_orders_in_the_signals_trace(env):
    exchange = env.rest_exchange()
    exchange.load_markets()
    fees = {"momentum": 0.0, "mean_reversion": 0.0}
    for strategy, amounts in (("momentum", (0.01, 0.02)), ("mean_reversion", (0.005,))):
        with env.tracer.start_as_current_span("bot.decide"):
            trading.record_signal(strategy, "BTC/USDT", "long")
            for amount in amounts:
                order = exchange.create_order("BTC/USDT", "market", "buy", amount)
                fees[strategy] += order["fee"]["cost"]  # USDT, the exchange's own fee
    exchange.create_order("BTC/USDT", "market", "buy", 0.001)  # no signal's trace: charged to no strategy
    metrics = env.metrics()
    cost = {p.attributes["trading.strategy"]: p.value for p in metrics["trading.signal.cost"]}
    assert cost == {"momentum": pytest.approx(fees["momentum"]), "mean_reversion": pytest.approx(fees["mean_reversion"])}
    signals = {p.attributes["trading.strategy"]: p.value for p in metrics["trading.signals"]}
    assert signals == {"momentum": 1, "mean_reversion": 1}  # cost per signal = cost / signals


def test_every_pro_exchange_watch_method_is_wrapped_and_uninstrument_restores_it(env):
    from ccxt.async_support.base.ws.client import Client

    classes = {klass for exchange_id in ccxt.pro.exchanges for klass in getattr(ccxt.pro, exchange_id).__mro__
               if klass.__module__.startswith("ccxt.")}
    watch = {(klass, name) for klass in classes for name in vars(klass) if name.startswith("watch_")}
    assert len({klass for klass, _ in watch}) > 50
    unwrapped = [key for key in watch if not hasattr(vars(key[0])[key[1]], "__wrapped__")]
    assert unwrapped == []
    assert all(hasattr(vars(Client)[name], "__wrapped__") for name in ("open", "on_error", "on_close", "close"))
    originals = {key: vars(key[0])[key[1]].__wrapped__ for key in watch}
    env.instrumentor.uninstrument()
    assert [key for key, original in originals.items() if vars(key[0])[key[1]] is not original] == []
    assert not hasattr(vars(Client)["open"], "__wrapped__")
    env.instrumentor.instrument(**env.providers)
    assert env.instrumentor.pro_wrapped_count > len(watch)


def test_order_filled_as_watch_orders_shows_it(env):
    rest = env.rest_exchange()
    rest.load_markets()
    order = rest.create_order("BTC/USDT", "limit", "buy", 0.01, 60000)  # rests on the book

    async def main() -> None:
        exchange = point_ccxt_pro_at(ccxt.pro.binance({"apiKey": "k", "secret": "s", "enableRateLimit": False}),
                                     env.rest.url, env.streams.url)
        await exchange.load_markets()
        orders = Consumer(exchange, "watch_orders", "BTC/USDT")
        await subscribed(env, "userData")
        for seconds, filled in ((1.0, 0.004), (2.0, 0.01)):
            env.clock.advance(seconds)
            await awaiting(exchange, "orders:BTC/USDT")
            before = len(orders.updates)
            assert await asyncio.to_thread(env.streams.publish_order, int(order["id"]), "BTCUSDT", "buy", "limit",
                                           0.01, 60000.0, filled) == 1
            await until(lambda: len(orders.updates) == before + 1, "the order update")
            assert orders.updates[-1][-1]["filled"] == pytest.approx(filled)
        await orders.stop()
        await exchange.close()

    asyncio.run(main())
    metrics = env.metrics()
    assert [p.value for p in metrics["trading.orders.placed"]] == [1]
    assert [p.value for p in metrics["trading.order.partial_fills"]] == [1]
    assert [p.value for p in metrics["trading.orders.filled"]] == [1]
    fill_time = metrics["trading.order.fill_time"][0]
    assert fill_time.count == 1 and fill_time.sum == pytest.approx(3.0, abs=0.5)  # 3 s on the clock after placing
    messages = {(p.attributes.get("trading.symbol"), p.attributes["trading.market_data.channel"]): p.value
                for p in metrics["trading.market_data.messages"]}
    assert messages == {("BTC/USDT", "watch_orders"): 2}
    # An account stream speaks only when something happens: never a staleness series.
    assert not [p for p in metrics.get("trading.market_data.status", []) if p.attributes["trading.symbol"] == "BTC/USDT"]


def test_order_book_stream_snapshot_then_diffs(env):
    env.rest.book.depth_update_id = 100  # the REST snapshot's lastUpdateId the diffs continue

    async def main() -> None:
        exchange = env.exchange()
        await exchange.load_markets()
        book = Consumer(exchange, "watch_order_book", "BTC/USDT")
        # ccxt subscribes, fetches the snapshot over REST and returns it: the first message.
        await until(lambda: len(book.updates) == 1, "the order book snapshot")
        assert book.updates[0]["nonce"] == 100
        first = 101
        for _ in range(3):
            before = len(book.updates)
            assert await asyncio.to_thread(env.streams.publish_depth, "BTCUSDT", first, first + 4,
                                           [(64990.0, 1.0)], [(65010.0, 2.0)], 0.06) == 1
            await until(lambda: len(book.updates) == before + 1, "the diff")
            assert book.updates[-1]["nonce"] == first + 4
            first += 5
        await book.stop()
        await exchange.close()

    asyncio.run(main())
    metrics = env.metrics()
    assert [p.value for p in metrics["trading.market_data.messages"]] == [4]
    (latency,) = metrics["trading.market_data.latency"]
    bounds = list(latency.explicit_bounds)
    # The snapshot has no exchange timestamp; the three diffs were stamped 60 ms before the clock.
    assert latency.count == 3 and latency.bucket_counts[bounds.index(0.075)] == 3
    assert latency.attributes["trading.market_data.channel"] == "watch_order_book"


def test_a_model_call_before_the_signal_is_charged_to_it(env):
    with env.tracer.start_as_current_span("bot.decide"):
        # The model call that produced the signal ends before the signal is recorded.
        with env.tracer.start_as_current_span("chat gpt-4o-mini", attributes={
                "gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 500}):
            pass
        trading.record_signal("llm_momentum", "BTC/USDT", "long")
    cost = {p.attributes["trading.strategy"]: p.value for p in env.metrics()["trading.signal.cost"]}
    usd = {p.attributes.get("gen_ai.token.type"): p.value for p in env.metrics()["otel_monitoring.cost"]}
    assert cost == {"llm_momentum": pytest.approx(sum(usd.values()))} and cost["llm_momentum"] > 0


def _account_exchange(env: Env) -> Any:
    return point_ccxt_pro_at(ccxt.pro.binance({"apiKey": "k", "secret": "s", "enableRateLimit": False}),
                             env.rest.url, env.streams.url)


async def _account_event(env: Env, exchange: Any, consumer: Consumer, message_hash: str, publish: Any,
                         *args: Any, **kwargs: Any) -> Any:
    """Send one account event once ccxt waits for it, and wait until the application has it."""
    await awaiting(exchange, message_hash)
    before = len(consumer.updates)
    assert await asyncio.to_thread(publish, *args, **kwargs) == 1
    await until(lambda: len(consumer.updates) == before + 1, message_hash)
    return consumer.updates[-1]


def _by_stream(points: list[Any]) -> dict[tuple[str | None, str], Any]:
    return {(p.attributes.get("trading.symbol"), p.attributes["trading.market_data.channel"]): p for p in points}


def test_balance_and_my_trades_of_the_spot_user_data_stream(env):
    """Spot account streams: the WebSocket API's signed user-data subscription, then
    outboundAccountPosition and executionReport (a fill is a trade of mine) events."""
    async def main() -> None:
        exchange = _account_exchange(env)
        await exchange.load_markets()
        balance = Consumer(exchange, "watch_balance")
        trades = Consumer(exchange, "watch_my_trades", "BTC/USDT")
        await subscribed(env, USER_DATA)
        for free, latency in ((900.0, 0.3), (850.0, 0.3), (800.0, 0.3)):
            env.clock.advance(1.0)
            update = await _account_event(env, exchange, balance, "spot:balance", env.streams.publish_balance,
                                          {"USDT": (free, 100.0), "BTC": (1.5, 0.0)}, latency=latency)
            # What the application reads is ccxt's own parse, unchanged by the instrumentation.
            assert (update["USDT"]["free"], update["USDT"]["used"], update["USDT"]["total"]) == (free, 100.0, free + 100)
        for order_id in (501, 502):
            env.clock.advance(1.0)
            update = await _account_event(env, exchange, trades, "myTrades:BTC/USDT", env.streams.publish_order,
                                          order_id, "BTCUSDT", "buy", "limit", 0.01, 60000.0, 0.01, latency=0.04)
            assert [(t["order"], t["amount"]) for t in update] == [(str(order_id), 0.01)]
        await balance.stop()
        await trades.stop()
        await exchange.close()

    asyncio.run(main())
    metrics = env.metrics()
    messages = {key: p.value for key, p in _by_stream(metrics["trading.market_data.messages"]).items()}
    assert messages == {(None, "watch_balance"): 3, ("BTC/USDT", "watch_my_trades"): 2}
    latency = _by_stream(metrics["trading.market_data.latency"])
    bounds = list(latency[None, "watch_balance"].explicit_bounds)
    # Event times 300 ms (balances) and 40 ms (trades) before the clock the receipts are read on.
    assert latency[None, "watch_balance"].count == 3
    assert latency[None, "watch_balance"].bucket_counts[bounds.index(0.5)] == 3
    assert latency[None, "watch_balance"].sum == pytest.approx(0.9, abs=0.003)
    assert latency["BTC/USDT", "watch_my_trades"].count == 2
    assert latency["BTC/USDT", "watch_my_trades"].bucket_counts[bounds.index(0.05)] == 2
    # Intervals between messages of one stream: 1 s and 1 s of the clock (balances), 1 s (trades).
    interval = _by_stream(metrics["trading.market_data.interval"])
    assert (interval[None, "watch_balance"].count, interval[None, "watch_balance"].sum) == (2, pytest.approx(2.0))
    assert (interval["BTC/USDT", "watch_my_trades"].count, interval["BTC/USDT", "watch_my_trades"].sum) == (
        1, pytest.approx(1.0))
    # Account streams speak only when something happens: no staleness, rate or gaps for them.
    assert not metrics.get("trading.market_data.status")
    assert not metrics.get("trading.market_data.gaps") and not metrics.get("trading.market_data.rate")
    # One span per subscription (its first message), one per connection; none per message.
    spans = [s for s in env.spans.get_finished_spans() if s.name.startswith(("ccxt.watch", "ccxt.websocket"))]
    assert sorted(s.name for s in spans) == ["ccxt.watch_balance", "ccxt.watch_my_trades", "ccxt.websocket.connect"]
    assert env.streams.connection_log == ["/ws"]  # both streams on the WebSocket API connection
    first = {s.name: s for s in spans}
    assert first["ccxt.watch_my_trades"].attributes["trading.symbol"] == "BTC/USDT"
    assert "trading.symbol" not in first["ccxt.watch_balance"].attributes
    assert all(s.attributes["trading.exchange"] == "binance" for s in spans)


def test_positions_of_the_futures_user_data_stream_over_a_listen_key(env):
    """USDⓈ-M futures: ccxt gets a listenKey over REST, loads the positions snapshot over REST,
    then connects to the private stream with the key and reads ACCOUNT_UPDATE events."""
    env.rest.book.futures = True  # the perpetuals the positions are in

    async def main() -> None:
        exchange = _account_exchange(env)
        await exchange.load_markets()
        positions = Consumer(exchange, "watch_positions")
        # The first call returns the REST snapshot (no position open); the next one connects.
        await until(lambda: len(positions.updates) == 1, "the positions snapshot")
        assert positions.updates[0] == []
        await subscribed(env, FUTURES_USER_DATA)
        for amount, pnl in ((0.01, 1.5), (0.03, -2.25)):
            env.clock.advance(2.0)
            update = await _account_event(env, exchange, positions, "linear:positions",
                                          env.streams.publish_account_update, {"USDT": 1000.0},
                                          [("BTCUSDT", amount, 65000.0, pnl), ("ETHUSDT", -0.5, 3200.0, 4.0)],
                                          latency=0.12)
            assert [(p["symbol"], p["contracts"], p["side"], p["unrealizedPnl"]) for p in update] == [
                ("BTC/USDT:USDT", amount, "long", pnl), ("ETH/USDT:USDT", 0.5, "short", 4.0)]
        await positions.stop()
        await exchange.close()

    asyncio.run(main())
    # One key handed out over REST, and the one private connection made with it.
    assert env.rest.book.listen_keys == ["stubListenKey1"] and env.streams.listen_keys == ["stubListenKey1"]
    assert ("POST", "/fapi/v1/listenKey") in env.rest.requests and ("GET", "/fapi/v3/positionRisk") in env.rest.requests
    metrics = env.metrics()
    # The snapshot and two updates: three messages of one stream (the symbols inside are not streams).
    messages = {key: p.value for key, p in _by_stream(metrics["trading.market_data.messages"]).items()}
    assert messages == {(None, "watch_positions"): 3}
    latency = _by_stream(metrics["trading.market_data.latency"])[None, "watch_positions"]
    bounds = list(latency.explicit_bounds)
    # The snapshot carries no event time; the two updates were stamped 120 ms before receipt.
    assert latency.count == 2 and latency.bucket_counts[bounds.index(0.25)] == 2
    assert latency.sum == pytest.approx(0.24, abs=0.003)
    assert not metrics.get("trading.market_data.status")
    spans = [s for s in env.spans.get_finished_spans() if s.name.startswith(("ccxt.watch", "ccxt.websocket"))]
    assert sorted(s.name for s in spans) == ["ccxt.watch_positions", "ccxt.websocket.connect"]
    (connect,) = [s for s in spans if s.name == "ccxt.websocket.connect"]
    # The URL on the span keeps no listenKey (a credential of the account).
    assert "stubListenKey1" not in str(connect.attributes.get("trading.websocket.url"))
    assert [p.value for p in metrics["trading.websocket.connections"]] == [0]


def test_one_stale_symbol_notifies_one_critical_alert(env):
    """The age rule (warning, > 300 s) and the STALE rule (critical) share one condition: a frozen
    stream is one critical notification; a polled symbol merely old is one warning."""
    rules = [rule for rule in load_rules().rules if rule.labels.get("condition") == "market_data_stale"]
    assert sorted((rule.id, rule.severity) for rule in rules) == [
        ("market_data_stale", "critical"), ("stale_market_data", "warning")]
    engine = AlertEngine(rules, clock=env.clock)
    notified: list[tuple[str, str, str, str]] = []

    def evaluate() -> None:
        for event in engine.evaluate(points_from_metrics_data(env.reader.get_metrics_data())):
            if event.notify:
                notified.append((event.kind, event.alert["rule_id"], event.alert["labels"]["trading.symbol"],
                                 event.alert["severity"]))

    async def main() -> None:
        exchange = env.exchange()
        await exchange.load_markets()
        btc = Consumer(exchange, "watch_ticker", "BTC/USDT")
        await subscribed(env, "btcusdt@")
        await publish(env, btc, "BTCUSDT")
        trading.mark_market_data("ETH/USDT", "binance")  # polled once over REST, then not again
        evaluate()
        # BTC's stream goes silent (STALE after 5 s here); ETH ages by the one-hour limit of polled data.
        for _ in range(43):
            env.clock.advance(10.0)
            evaluate()
        # 430 s on: BTC STALE by its stream's limit; ETH still LIVE by the 10-minute limit of polled data.
        assert _states(env) == {"BTC/USDT": "STALE", "ETH/USDT": "LIVE"}
        await btc.stop()
        await exchange.close()

    asyncio.run(main())
    assert notified == [("firing", "market_data_stale", "BTC/USDT", "critical"),
                        ("firing", "stale_market_data", "ETH/USDT", "warning")]
    # BTC's age warning holds too (it is over 5 minutes old), but its critical silences it.
    firing = sorted((a["rule_id"], a["labels"]["trading.symbol"]) for a in engine.alerts() if a["state"] == "firing")
    assert firing == [("market_data_stale", "BTC/USDT"), ("stale_market_data", "BTC/USDT"),
                      ("stale_market_data", "ETH/USDT")]


def test_a_frozen_stream_of_a_symbol_also_polled_over_rest_is_stale_as_a_stream_and_live_as_a_symbol(env, tmp_path):
    """Two questions, two answers that say which they are: the symbol's data is fresh (REST polls
    keep it LIVE: KPIs, its status, the STALE alert), the stream is not (STALE in the feeds rows,
    with the symbol's state beside it, a warning rather than a critical)."""
    env.rest.clock = env.clock  # the REST tickers' timestamps on the test's clock
    rules = [rule for rule in load_rules().rules if rule.labels.get("condition") == "market_data_stale"]
    engine = AlertEngine(rules, clock=env.clock)

    def stream_states() -> dict[str, str]:
        return {p.attributes["trading.symbol"]: p.attributes["trading.market_data.state"]
                for p in env.metrics().get("trading.market_data.stream.status", []) if p.value == 1}

    async def main() -> None:
        exchange = env.exchange()
        await exchange.load_markets()
        btc = Consumer(exchange, "watch_ticker", "BTC/USDT")
        await subscribed(env, "btcusdt@")
        for _ in range(4):
            env.clock.advance(0.5)
            await publish(env, btc, "BTCUSDT")
            await exchange.fetch_ticker("BTC/USDT")  # the application also polls it over REST
        assert (_states(env), stream_states()) == ({"BTC/USDT": "LIVE"}, {"BTC/USDT": "LIVE"})
        # The stream freezes; the REST polls go on every half second.
        for _ in range(12):
            env.clock.advance(0.5)
            await exchange.fetch_ticker("BTC/USDT")
            engine.evaluate(points_from_metrics_data(env.reader.get_metrics_data()))
        assert _states(env) == {"BTC/USDT": "LIVE"}
        assert stream_states() == {"BTC/USDT": "STALE"}  # silent 6 s, STALE after 5 s
        assert [a for a in engine.alerts() if a["state"] == "firing"] == []  # the symbol's data is fresh
        overview = _overview(env, tmp_path)
        (feed,) = overview.feeds
        assert (feed.symbol, feed.freshness, feed.symbol_freshness, feed.state.name) == (
            "BTC/USDT", "STALE", "LIVE", "WARNING")
        assert [(s.symbol, s.freshness) for s in overview.symbols] == [("BTC/USDT", "LIVE")]
        from rich.console import Console

        from otel_monitoring.views.dashboard import render_frame

        console = Console(width=120, height=None, force_terminal=False)
        with console.capture() as captured:
            console.print(render_frame(overview, 120, None))
        assert "BTC/USDT ticker" in captured.get() and "STALE (symbol LIVE)" in captured.get()
        from otel_monitoring.views.html_report import render_html
        from otel_monitoring.views.report_data import gather_report

        page = render_html(gather_report(str(tmp_path), now=env.clock()))
        assert "<th>Stream state</th><th>Symbol state</th>" in page
        assert '<td class="name">STALE</td><td class="name">LIVE</td>' in page
        # The demo's summary says the same in words.
        from otel_monitoring.instrumentation.trading.ccxt import feed_summary_lines

        (line,) = [line for line in feed_summary_lines() if "watch_ticker BTC/USDT" in line]
        assert "stream STALE now" in line and "symbol LIVE from another source" in line
        await btc.stop()
        await exchange.close()

    asyncio.run(main())
