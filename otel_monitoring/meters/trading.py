"""Trading KPIs that no exchange call reveals: signals and their accuracy, realized and unrealized
PnL, win rate, profit factor, exposure, slippage, fill ratio, and market-data staleness.

The application reports them through the module functions (``record_signal``, ``record_trade``,
``mark_market_data`` ...), which never raise. Names and attributes are in docs/meters.md.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from decimal import Decimal
from typing import Any, Callable, Iterable

from opentelemetry import trace
from opentelemetry.metrics import CallbackOptions, Observation, get_meter

from ..version import __version__
from .current import Current
from .locks import ForkSafeLock, collecting
from .windows import OutcomeWindows
from .. import names
from ..thresholds import MARKET_DATA_DELAYED_SECONDS, MARKET_DATA_LIVE_SECONDS, MARKET_DATA_STATES, freshness

_logger = logging.getLogger(__name__)

SCOPE = "otel_monitoring.meters.trading"
SLIPPAGE_BUCKETS_BP = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0)
FILL_RATIO_BUCKETS = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 1.0)
_DIRECTIONS = {"long": "long", "buy": "long", "short": "short", "sell": "short", "flat": "flat", "hold": "flat"}


def slippage_bp(side: str, expected_price: float, fill_price: float) -> float:
    """Basis points paid over the expected price: positive is worse (a buy filled higher, a sell lower)."""
    sign = -1.0 if str(side).lower() in ("sell", "short") else 1.0
    return sign * (fill_price - expected_price) / expected_price * 10_000.0


class _Results:
    __slots__ = ("wins", "losses", "gross_profit", "gross_loss")

    def __init__(self) -> None:
        self.wins = self.losses = 0
        self.gross_profit = self.gross_loss = Decimal(0)


class TradingKPIs:
    def __init__(self, meter_provider: Any = None, window: int = 100,
                 live_seconds: float = MARKET_DATA_LIVE_SECONDS, delayed_seconds: float = MARKET_DATA_DELAYED_SECONDS, clock: Callable[[], float] = time.time):
        self.live_seconds, self.delayed_seconds = live_seconds, delayed_seconds
        self._clock = clock
        self._lock = ForkSafeLock()
        self.accuracy = OutcomeWindows(window)
        self.results: dict[str, _Results] = defaultdict(_Results)
        self.market_data: dict[tuple[str, str | None], float] = {}  # (symbol, exchange) -> last update, unix s
        self.signal_count = 0
        meter = get_meter(SCOPE, __version__, meter_provider)
        self._signals = meter.create_counter(names.TRADING_SIGNALS, unit="{signal}",
                                             description="Trading signals generated.")
        self._outcomes = meter.create_counter(names.TRADING_SIGNAL_OUTCOMES, unit="{signal}",
                                              description="Signals judged correct or incorrect.")
        self._signal_cost = meter.create_counter(
            names.TRADING_SIGNAL_COST, unit="USD",
            description="Cost of the orders and paid calls in signals' traces, per strategy; "
                        "/ trading.signals is the cost per signal.")
        self._trades = meter.create_counter(names.TRADING_TRADES, unit="{trade}", description="Closed trades by outcome.")
        self._pnl = meter.create_up_down_counter(names.TRADING_PNL_REALIZED, unit="USD", description="Realized PnL.")
        self._unrealized = meter.create_gauge(names.TRADING_PNL_UNREALIZED, unit="USD", description="Unrealized PnL.")
        self._exposure = meter.create_gauge(names.TRADING_EXPOSURE, unit="USD", description="Open position value.")
        self._slippage = meter.create_histogram(
            names.TRADING_ORDER_SLIPPAGE, unit="{bp}", explicit_bucket_boundaries_advisory=SLIPPAGE_BUCKETS_BP,
            description="Distance of the fill from the expected price in basis points; see trading.slippage.direction.")
        self._fill_ratio = meter.create_histogram(
            names.TRADING_ORDER_FILL_RATIO, unit="1", explicit_bucket_boundaries_advisory=FILL_RATIO_BUCKETS,
            description="Filled amount / ordered amount, per order.")
        meter.create_observable_gauge(names.TRADING_SIGNAL_ACCURACY, [self._observe_accuracy], unit="1",
                                      description="Correct / judged signals over the last KPI window, per strategy.")
        meter.create_observable_gauge(names.TRADING_WIN_RATE, [self._observe_win_rate], unit="1",
                                      description="Winning / (winning + losing) trades, per strategy.")
        meter.create_observable_gauge(names.TRADING_PROFIT_FACTOR, [self._observe_profit_factor], unit="1",
                                      description="Gross profit / gross loss, per strategy (once there is a loss).")
        meter.create_observable_gauge(names.TRADING_MARKET_DATA_STALENESS, [self._observe_staleness], unit="s",
                                      description="Seconds since the last market-data update, per symbol.")
        meter.create_observable_gauge(names.TRADING_MARKET_DATA_STATUS, [self._observe_status], unit="1",
                                      description="1 for the symbol's market-data state (LIVE, DELAYED, STALE), 0 for the others.")

    # --- recording ---

    def record_signal(self, strategy: str, symbol: str, direction: str) -> None:
        direction = _DIRECTIONS.get(str(direction).lower(), "other")
        self._signals.add(1, {names.TRADING_STRATEGY: strategy, names.TRADING_SYMBOL: symbol,
                              names.TRADING_SIGNAL_DIRECTION: direction})
        with self._lock:
            self.signal_count += 1
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            pending = _SIGNALS.claim(context.trace_id, strategy)
            if pending:
                self.record_signal_cost(strategy, pending)

    def record_signal_cost(self, strategy: str, usd: float) -> None:
        self._signal_cost.add(float(usd), {names.TRADING_STRATEGY: strategy})

    def record_signal_outcome(self, strategy: str, symbol: str, correct: bool) -> None:
        self._outcomes.add(1, {names.TRADING_STRATEGY: strategy, names.TRADING_SYMBOL: symbol,
                               names.TRADING_SIGNAL_OUTCOME: "correct" if correct else "incorrect"})
        self.accuracy.add(strategy, bool(correct))

    def record_trade(self, strategy: str, symbol: str, pnl_usd: float) -> None:
        pnl = Decimal(repr(float(pnl_usd)))
        outcome = "win" if pnl > 0 else "loss" if pnl < 0 else "breakeven"
        attrs = {names.TRADING_STRATEGY: strategy, names.TRADING_SYMBOL: symbol}
        self._trades.add(1, {**attrs, names.TRADING_TRADE_OUTCOME: outcome})
        self._pnl.add(float(pnl), attrs)
        with self._lock:
            results = self.results[strategy]
            if pnl > 0:
                results.wins += 1
                results.gross_profit += pnl
            elif pnl < 0:
                results.losses += 1
                results.gross_loss -= pnl

    def set_unrealized_pnl(self, symbol: str, pnl_usd: float, strategy: str | None = None) -> None:
        self._unrealized.set(float(pnl_usd), _position_attributes(symbol, strategy))

    def set_exposure(self, symbol: str, value_usd: float, strategy: str | None = None) -> None:
        self._exposure.set(float(value_usd), _position_attributes(symbol, strategy))

    def record_fill(self, symbol: str, side: str, expected_price: float | None = None, fill_price: float | None = None,
                    amount: float | None = None, filled: float | None = None, exchange: str | None = None) -> None:
        attrs = {names.TRADING_SYMBOL: symbol}
        if exchange:
            attrs[names.TRADING_EXCHANGE] = exchange
        if expected_price and fill_price is not None:
            # Histograms take no negative values: the size in bp, and which way it went.
            bp = slippage_bp(side, expected_price, fill_price)
            direction = "adverse" if bp > 0 else "favorable" if bp < 0 else "none"
            self._slippage.record(abs(bp), {**attrs, names.TRADING_ORDER_SIDE: str(side).lower(),
                                            names.TRADING_SLIPPAGE_DIRECTION: direction})
        if amount and filled is not None:
            self._fill_ratio.record(min(1.0, max(0.0, float(filled) / float(amount))), attrs)

    def mark_market_data(self, symbol: str, exchange: str | None = None, timestamp: float | None = None) -> None:
        """Market data for ``symbol`` arrived; ``timestamp`` (unix seconds, or ccxt's milliseconds) defaults to now."""
        when = self._clock() if timestamp is None else float(timestamp)
        if when > 1e11:  # ccxt timestamps are milliseconds
            when /= 1000.0
        with self._lock:
            # One symbol, one freshness series: a mark that names no exchange updates the symbol's
            # series of the exchange(s) already seen (the ccxt instrumentation names it), and a mark
            # naming the exchange takes over a series made without one.
            if exchange is None:
                keys = [k for k in self.market_data if k[0] == symbol and k[1] is not None] or [(symbol, None)]
            else:
                keys = [(symbol, exchange)]
                anonymous = self.market_data.pop((symbol, None), None)
                if anonymous is not None:
                    when = max(when, anonymous)
            for key in keys:
                self.market_data[key] = max(when, self.market_data.get(key, when))

    # --- reading ---

    def staleness(self) -> dict[tuple[str, str | None], tuple[float, str]]:
        now = self._clock()
        with collecting(self._lock):
            latest = {key: (updated, self.live_seconds, self.delayed_seconds)
                      for key, updated in self.market_data.items()}
            sources = list(_SOURCES)
        for source in sources:
            try:
                rows = list(source())
            except Exception:  # one broken feed must not hide the others
                _logger.warning("otel-monitoring: a market-data source failed", exc_info=True)
                continue
            for symbol, exchange, updated, live, delayed in rows:
                key = (symbol, exchange)
                previous = latest.get(key)
                # The feed's thresholds win: a stream is judged by how often it should speak.
                latest[key] = (updated if previous is None else max(updated, previous[0]), live, delayed)
        result = {}
        for key, (updated, live, delayed) in latest.items():
            age = max(0.0, now - updated)
            result[key] = (age, freshness(age, live, delayed))
        return result

    def strategy_results(self) -> dict[str, dict[str, float | None]]:
        with collecting(self._lock):
            return {
                strategy: {
                    "wins": r.wins, "losses": r.losses,
                    "win_rate": r.wins / (r.wins + r.losses) if r.wins + r.losses else None,
                    "profit_factor": float(r.gross_profit / r.gross_loss) if r.gross_loss else None,
                    "realized_pnl": float(r.gross_profit - r.gross_loss),
                }
                for strategy, r in self.results.items()
            }

    def _observe_accuracy(self, options: CallbackOptions) -> Iterable[Observation]:
        for strategy, rate in self.accuracy.rates().items():
            yield Observation(rate, {names.TRADING_STRATEGY: strategy})

    def _observe_win_rate(self, options: CallbackOptions) -> Iterable[Observation]:
        for strategy, row in self.strategy_results().items():
            if row["win_rate"] is not None:
                yield Observation(row["win_rate"], {names.TRADING_STRATEGY: strategy})

    def _observe_profit_factor(self, options: CallbackOptions) -> Iterable[Observation]:
        for strategy, row in self.strategy_results().items():
            if row["profit_factor"] is not None:
                yield Observation(row["profit_factor"], {names.TRADING_STRATEGY: strategy})

    def _observe_staleness(self, options: CallbackOptions) -> Iterable[Observation]:
        for (symbol, exchange), (age, _state) in self.staleness().items():
            yield Observation(age, _market_attributes(symbol, exchange))

    def _observe_status(self, options: CallbackOptions) -> Iterable[Observation]:
        for (symbol, exchange), (_age, state) in self.staleness().items():
            for name in MARKET_DATA_STATES:
                yield Observation(1 if name == state else 0,
                                  {**_market_attributes(symbol, exchange), names.TRADING_MARKET_DATA_STATE: name})


class _SignalTraces:
    """Which trace is which strategy's signal, and the cost a trace ran up before its signal was
    recorded (an LLM call that produced the signal): bounded, the oldest traces forgotten first."""

    LIMIT = 10_000

    def __init__(self) -> None:
        from collections import OrderedDict

        self._lock = ForkSafeLock()
        self.strategies: OrderedDict[int, str] = OrderedDict()
        self.pending: OrderedDict[int, float] = OrderedDict()

    def claim(self, trace_id: int, strategy: str) -> float:
        with self._lock:
            self.strategies[trace_id] = strategy
            self._trim(self.strategies)
            return self.pending.pop(trace_id, 0.0)

    def cost(self, trace_id: int, usd: float) -> str | None:
        """The strategy to charge, or None (then the cost waits for a signal in the same trace)."""
        with self._lock:
            strategy = self.strategies.get(trace_id)
            if strategy is None:
                self.pending[trace_id] = self.pending.get(trace_id, 0.0) + usd
                self._trim(self.pending)
            return strategy

    def _trim(self, table: Any) -> None:
        while len(table) > self.LIMIT:
            table.popitem(last=False)


_SIGNALS = _SignalTraces()


def record_cost_in_trace(trace_id: int, usd: float) -> None:
    """A priced span of ``trace_id`` ended (the cost processor): charge its signal's strategy."""
    try:
        if not usd:
            return
        strategy = _SIGNALS.cost(trace_id, float(usd))
        if strategy is not None:
            current_trading_kpis().record_signal_cost(strategy, float(usd))
    except Exception:  # pricing must never disturb the span pipeline
        _logger.warning("otel-monitoring: recording a signal's cost failed", exc_info=True)


# Live feeds (the WebSocket streams of the ccxt instrumentor) report their last update and their
# thresholds when the state is read: a message costs them no lock here, a stream that stops turns
# STALE by itself, and a symbol they share with mark_market_data is one series. Process-wide, so a
# feed registered before configure() installs the KPIs is still read.
MarketDataSource = Callable[[], Iterable[tuple[str, "str | None", float, float, float]]]
_SOURCES: list[MarketDataSource] = []


def add_market_data_source(source: MarketDataSource) -> None:
    """``source()`` yields ``(symbol, exchange, last update unix s, live_seconds, delayed_seconds)``."""
    if source not in _SOURCES:
        _SOURCES.append(source)


def remove_market_data_source(source: MarketDataSource) -> None:
    if source in _SOURCES:
        _SOURCES.remove(source)


def _position_attributes(symbol: str, strategy: str | None) -> dict[str, str]:
    return {names.TRADING_SYMBOL: symbol, **({names.TRADING_STRATEGY: strategy} if strategy else {})}


def _market_attributes(symbol: str, exchange: str | None) -> dict[str, str]:
    return {names.TRADING_SYMBOL: symbol, **({names.TRADING_EXCHANGE: exchange} if exchange else {})}


# --- the process' instance and the public functions ---

_current: Current[TradingKPIs] = Current(TradingKPIs)
install = _current.install
current_trading_kpis = _current.get


def _safely(method: str) -> Callable[..., None]:
    def call(*args: Any, **kwargs: Any) -> None:
        try:
            getattr(current_trading_kpis(), method)(*args, **kwargs)
        except Exception:  # a KPI must never break the trading loop
            _logger.warning("otel-monitoring: %s failed", method, exc_info=True)

    call.__name__ = method
    call.__doc__ = getattr(TradingKPIs, method).__doc__
    return call


record_signal = _safely("record_signal")
record_signal_outcome = _safely("record_signal_outcome")
record_trade = _safely("record_trade")
set_unrealized_pnl = _safely("set_unrealized_pnl")
set_exposure = _safely("set_exposure")
record_fill = _safely("record_fill")
mark_market_data = _safely("mark_market_data")
