"""Trading and RAG KPIs read back through the in-memory metric reader: values, units, attributes,
and the staleness and relevance edges."""

from __future__ import annotations

import pytest
from meters_support import read_metrics

from otel_monitoring.meters import rag as rag_module
from otel_monitoring.meters import trading as trading_module
from otel_monitoring.meters.rag import RagKPIs, retrieval_outcome
from otel_monitoring.meters.trading import TradingKPIs, slippage_bp
from otel_monitoring.thresholds import freshness


class Clock:
    now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def kpis(telemetry, clock):
    kpis = TradingKPIs(telemetry.meter_provider, window=4, live_seconds=600, delayed_seconds=3600, clock=clock)
    trading_module.install(kpis)
    yield kpis
    trading_module.install(None)


@pytest.mark.parametrize("age, state", [
    (0, "LIVE"), (599.999, "LIVE"), (600, "DELAYED"), (3599.999, "DELAYED"), (3600, "STALE"), (86400, "STALE"),
])
def test_market_data_state_edges(age, state):
    assert freshness(age, 600, 3600) == state


def test_market_data_staleness_and_status_per_symbol(telemetry, kpis, clock):
    trading_module.mark_market_data("BTC/USDT", exchange="binance", timestamp=(clock.now - 600) * 1000)  # ccxt ms
    trading_module.mark_market_data("ETH/USDT", exchange="binance")
    clock.now += 599.5
    metrics = read_metrics(telemetry.metric_reader)
    staleness = metrics["trading.market_data.staleness"]
    assert staleness.unit == "s"
    assert staleness.value(trading__symbol="BTC/USDT", trading__exchange="binance") == pytest.approx(1199.5)
    assert staleness.value(trading__symbol="ETH/USDT") == pytest.approx(599.5)
    status = metrics["trading.market_data.status"]
    current = {(p.attributes["trading.symbol"], p.attributes["trading.market_data.state"]): p.value for p in status.points}
    assert current[("BTC/USDT", "DELAYED")] == 1 and current[("BTC/USDT", "LIVE")] == 0
    assert current[("ETH/USDT", "LIVE")] == 1
    assert sum(current.values()) == 2
    clock.now += 0.5  # ETH reaches exactly 600 s: DELAYED
    status = read_metrics(telemetry.metric_reader)["trading.market_data.status"]
    assert status.value(trading__symbol="ETH/USDT", trading__market_data__state="DELAYED") == 1


def test_one_symbol_one_staleness_series_whoever_marks_it(telemetry, kpis, clock):
    """The ccxt instrumentation names the exchange, mark_market_data() in the app often does not:
    together they still make one series per symbol, with the newest update."""
    trading_module.mark_market_data("BTC/USDT", timestamp=clock.now - 30)                # the app, first
    trading_module.mark_market_data("BTC/USDT", exchange="binance", timestamp=clock.now - 20)  # ccxt
    trading_module.mark_market_data("BTC/USDT", timestamp=clock.now - 5)                 # the app again
    points = read_metrics(telemetry.metric_reader)["trading.market_data.staleness"].points
    assert [(dict(p.attributes), p.value) for p in points] == [
        ({"trading.symbol": "BTC/USDT", "trading.exchange": "binance"}, pytest.approx(5))]
    status = read_metrics(telemetry.metric_reader)["trading.market_data.status"].points
    assert sum(p.value for p in status) == 1


def test_signals_and_accuracy_over_a_sliding_window(telemetry, kpis):
    for direction in ("buy", "long", "sell", "hold"):
        trading_module.record_signal("momentum", "BTC/USDT", direction)
    for correct in (False, False, True, True, True, False):  # window of 4 keeps the last four
        trading_module.record_signal_outcome("momentum", "BTC/USDT", correct)
    metrics = read_metrics(telemetry.metric_reader)
    signals = metrics["trading.signals"]
    assert signals.unit == "{signal}"
    assert signals.value(trading__strategy="momentum", trading__signal__direction="long") == 2
    assert signals.value(trading__signal__direction="short") == 1
    assert signals.value(trading__signal__direction="flat") == 1
    assert metrics["trading.signal.outcomes"].value(trading__signal__outcome="correct") == 3
    accuracy = metrics["trading.signal.accuracy"]
    assert accuracy.unit == "1"
    assert accuracy.value(trading__strategy="momentum") == 0.75


def test_trades_win_rate_profit_factor_and_realized_pnl(telemetry, kpis):
    for pnl in (120.5, -40.25, 0.0, 80.0, -20.0):
        trading_module.record_trade("meanrev", "ETH/USDT", pnl)
    metrics = read_metrics(telemetry.metric_reader)
    trades = metrics["trading.trades"]
    assert trades.value(trading__trade__outcome="win") == 2
    assert trades.value(trading__trade__outcome="loss") == 2
    assert trades.value(trading__trade__outcome="breakeven") == 1
    pnl = metrics["trading.pnl.realized"]
    assert pnl.unit == "USD" and pnl.value(trading__strategy="meanrev") == pytest.approx(140.25)
    assert metrics["trading.win_rate"].value(trading__strategy="meanrev") == 0.5
    # gross profit 200.5 / gross loss 60.25
    assert metrics["trading.profit_factor"].value(trading__strategy="meanrev") == pytest.approx(200.5 / 60.25)


def test_profit_factor_waits_for_a_loss(telemetry, kpis):
    trading_module.record_trade("trend", "BTC/USDT", 10.0)
    metrics = read_metrics(telemetry.metric_reader)
    assert metrics["trading.win_rate"].value(trading__strategy="trend") == 1.0
    assert "trading.profit_factor" not in metrics  # not infinity


def test_positions_slippage_and_fill_ratio(telemetry, kpis):
    trading_module.set_unrealized_pnl("BTC/USDT", -12.5, strategy="trend")
    trading_module.set_exposure("BTC/USDT", 30_000.0, strategy="trend")
    trading_module.set_exposure("BTC/USDT", 15_000.0, strategy="trend")
    trading_module.record_fill("BTC/USDT", "buy", expected_price=50_000, fill_price=50_025, amount=2, filled=1.5,
                               exchange="binance")
    trading_module.record_fill("BTC/USDT", "sell", expected_price=50_000, fill_price=50_025, exchange="binance")
    metrics = read_metrics(telemetry.metric_reader)
    assert metrics["trading.pnl.unrealized"].value(trading__symbol="BTC/USDT", trading__strategy="trend") == -12.5
    assert metrics["trading.exposure"].value(trading__symbol="BTC/USDT") == 15_000.0
    slippage = metrics["trading.order.slippage"]
    assert slippage.unit == "{bp}"
    assert slippage.value(trading__order__side="buy", trading__slippage__direction="adverse").sum == pytest.approx(5.0)
    # sold 5 bp above the expected price: better, recorded as 5 bp favorable
    assert slippage.value(trading__order__side="sell", trading__slippage__direction="favorable").sum == pytest.approx(5.0)
    fill = metrics["trading.order.fill_ratio"].value(trading__exchange="binance")
    assert (fill.count, fill.sum) == (1, 0.75)


def test_slippage_sign():
    assert slippage_bp("buy", 100.0, 101.0) == pytest.approx(100.0)
    assert slippage_bp("sell", 100.0, 99.0) == pytest.approx(100.0)
    assert slippage_bp("sell", 100.0, 101.0) == pytest.approx(-100.0)


def test_kpi_functions_never_raise(telemetry, kpis, caplog):
    trading_module.record_trade("x", "BTC/USDT", "not a number")
    trading_module.record_fill("BTC/USDT", "buy", expected_price=0, fill_price=1.0)  # no expected price: skipped
    assert any("record_trade failed" in r.getMessage() for r in caplog.records)


# --- RAG ---

@pytest.mark.parametrize("scores, relevant, outcome", [
    ([0.7], None, "hit"), ([0.6999], None, "miss"), ([0.2, 0.9], None, "hit"), ([], None, "empty"),
    ([0.9], False, "miss"), ([0.1], True, "hit"), ([], False, "empty"),
])
def test_retrieval_outcome_edges(scores, relevant, outcome):
    assert retrieval_outcome(scores, 0.7, relevant) == outcome


def test_rag_hit_rate_empty_rate_and_relevance(telemetry):
    kpis = RagKPIs(telemetry.meter_provider, window=5, relevance_threshold=0.7)
    rag_module.install(kpis)
    try:
        for scores in ([0.9, 0.3], [0.5], [], [0.71], [0.8], [0.95]):  # window keeps the last five
            rag_module.record_retrieval(scores, collection="docs")
        rag_module.record_retrieval([0.2], collection="faq", relevant=True)
    finally:
        rag_module.install(None)
    metrics = read_metrics(telemetry.metric_reader)
    retrievals = metrics["rag.retrievals"]
    assert retrievals.unit == "{retrieval}"
    assert retrievals.value(rag__collection="docs", rag__retrieval__outcome="hit") == 4
    assert retrievals.value(rag__collection="docs", rag__retrieval__outcome="miss") == 1
    assert retrievals.value(rag__collection="docs", rag__retrieval__outcome="empty") == 1
    assert metrics["rag.retrieval.hit_rate"].value(rag__collection="docs") == pytest.approx(3 / 5)
    assert metrics["rag.retrieval.empty_rate"].value(rag__collection="docs") == pytest.approx(1 / 5)
    assert metrics["rag.retrieval.hit_rate"].value(rag__collection="faq") == 1.0
    relevance = metrics["rag.retrieval.relevance"].value(rag__collection="docs")
    assert relevance.count == 5 and relevance.sum == pytest.approx(0.9 + 0.5 + 0.71 + 0.8 + 0.95)
