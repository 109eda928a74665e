"""The health of every WebSocket feed: per-message metrics of ccxt.pro streams, and their connections.

A stream is one (exchange instance, watch method, symbol). Each message the application receives
through a ``watch_*`` call counts here; the hot path only updates plain numbers of the stream, and
the instruments read them when the metrics are collected:

- ``trading.market_data.messages`` is an observable counter over the streams' counts;
- ``trading.market_data.latency`` / ``.interval`` are histograms aggregated here (``preaggregation``:
  bucket counts per stream, handed to every reader at collection time); their values wait in a small
  per-stream list and are added when a reader collects (the callback of the counter runs first), or
  as soon as a list is full, so the application's event loop pays for an append, not a record;
- staleness and the LIVE/DELAYED/STALE state of a symbol are read from the streams by the trading
  meters (one series per symbol, from its freshest source: ``add_market_data_source``), and each
  stream's own state is ``trading.market_data.stream.status``: a frozen stream is STALE there even
  while the application polls its symbol over REST and the symbol stays LIVE;
- gaps (a pause far above the stream's usual interval) and the message rate against a per-stream
  minimum are computed from the same numbers.

Account streams (orders, balance, positions, my trades) speak only when something happens: they
count messages and latency, never staleness, gaps or rates.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Iterable, Mapping

from opentelemetry.metrics import CallbackOptions, Observation

from .... import names, preaggregation
from ....version import __version__
from ....thresholds import MARKET_DATA_STATES, STREAM_LIVE_SECONDS, STREAM_STALE_SECONDS, freshness

_logger = logging.getLogger("otel_monitoring.instrumentation")

ACCOUNT_CHANNELS = frozenset((
    "watch_orders", "watch_orders_for_symbols", "watch_my_trades", "watch_my_trades_for_symbols",
    "watch_balance", "watch_positions", "watch_position", "watch_position_for_symbols",
    "watch_my_liquidations", "watch_my_liquidations_for_symbols",
))
MAX_SYMBOLS = 500  # distinct symbols per exchange on metrics; later ones share "_other"
PENDING_LIMIT = 1024  # values held per stream before they are recorded on the spot
RATE_WINDOW = 60.0  # seconds over which a stream's message rate is measured
GAP_MIN_SECONDS = 1.0  # a pause shorter than this is never a gap
GAP_WARMUP = 5  # intervals seen before the usual interval is trusted
EWMA_ALPHA = 0.1


class Stream:
    """What one stream has done so far (plain numbers, updated on the application's event loop)."""

    __slots__ = ("exchange", "symbol", "channel", "market", "attributes", "count", "first", "last",
                 "usual", "intervals_seen", "gaps", "window_start", "window_count", "last_rate",
                 "latencies", "intervals", "live", "stale", "min_rate", "latency_series", "interval_series")

    def __init__(self, exchange: str, symbol: str | None, channel: str, now: float,
                 live: float, stale: float, min_rate: float | None):
        self.exchange, self.symbol, self.channel = exchange, symbol, channel
        self.market = channel not in ACCOUNT_CHANNELS
        attributes = {names.TRADING_EXCHANGE: exchange, names.TRADING_MARKET_DATA_CHANNEL: channel}
        if symbol is not None:
            attributes[names.TRADING_SYMBOL] = symbol
        self.attributes = attributes
        self.count = 0
        self.first = self.last = now
        self.usual: float | None = None
        self.intervals_seen = 0
        self.gaps = 0
        self.window_start, self.window_count, self.last_rate = now, 0, None
        self.latencies: list[float] = []
        self.intervals: list[float] = []
        self.latency_series: Any = None  # the stream's series of the aggregated histograms
        self.interval_series: Any = None
        self.live, self.stale, self.min_rate = live, stale, min_rate

    def rate(self, now: float) -> float | None:
        """Messages per second over the last full window, or the current window once it is longer."""
        elapsed = now - self.window_start
        if elapsed >= RATE_WINDOW:
            return self.window_count / elapsed
        if self.last_rate is not None:
            return self.last_rate
        return None  # not a full window yet: no verdict


class Feeds:
    """The streams and WebSocket connections of one instrumentor, and the instruments that read them."""

    def __init__(self, meter: Any, clock: Callable[[], float] = time.time, live_seconds: float = STREAM_LIVE_SECONDS,
                 stale_seconds: float = STREAM_STALE_SECONDS, gap_factor: float = 10.0,
                 min_rates: Mapping[str, float] | None = None, *, meter_provider: Any, scope: str):
        self.clock = clock
        if stale_seconds <= live_seconds:
            _logger.warning("otel-monitoring: stream_stale_seconds (%g) must exceed stream_live_seconds (%g); "
                            "using %g", stale_seconds, live_seconds, live_seconds * 6)
            stale_seconds = live_seconds * 6
        self.live_seconds, self.stale_seconds, self.gap_factor = live_seconds, stale_seconds, gap_factor
        self.min_rates = dict(min_rates or {})
        self.streams: dict[tuple[int, str, str | None], Stream] = {}
        self._symbols: dict[str, set[str]] = {}
        self._lock = threading.Lock()  # structure changes only (new and ended streams), not messages
        # Counts of ended streams, so the counters stay monotonic after un_watch_* or close().
        self._ended: dict[str, dict[tuple, tuple[int, dict]]] = {"messages": {}, "gaps": {}}
        # The last streams that ended (un_watch_*, close) and the state they ended in, for summaries.
        self.ended_streams: deque[tuple[Stream, float, str | None]] = deque(maxlen=100)
        # ``meter`` is ``scope``'s meter of ``meter_provider``: the histograms join its other instruments.
        self.latency = preaggregation.histogram(
            meter_provider, scope, names.TRADING_MARKET_DATA_LATENCY, unit="s", version=__version__,
            description="Receipt time of a WebSocket message minus the exchange's timestamp on it.",
            boundaries=names.MARKET_DATA_LATENCY_BUCKETS)
        self.interval = preaggregation.histogram(
            meter_provider, scope, names.TRADING_MARKET_DATA_INTERVAL, unit="s", version=__version__,
            description="Time between two messages of one market-data stream.",
            boundaries=names.MARKET_DATA_INTERVAL_BUCKETS)
        meter.create_observable_counter(
            names.TRADING_MARKET_DATA_MESSAGES, [self._observe_messages], unit="{message}",
            description="WebSocket messages received through ccxt.pro watch_* calls, per stream.")
        meter.create_observable_counter(
            names.TRADING_MARKET_DATA_GAPS, [self._observe_gaps], unit="{gap}",
            description="Pauses in a market-data stream far above its usual interval.")
        meter.create_observable_gauge(
            names.TRADING_MARKET_DATA_RATE, [self._observe_rate], unit="{message}/s",
            description="Messages per second of a market-data stream over the last minute.")
        meter.create_observable_gauge(
            names.TRADING_MARKET_DATA_STREAM_STATUS, [self._observe_stream_status], unit="1",
            description="1 for the stream's own state (LIVE, DELAYED, STALE) by its thresholds, 0 for the others; "
                        "trading.market_data.status is the symbol's, from its freshest source.")
        meter.create_observable_gauge(
            names.TRADING_MARKET_DATA_BELOW_MIN_RATE, [self._observe_below_min], unit="1",
            description="1 while a stream with a configured minimum rate is under it, else 0.")
        self.connections = meter.create_up_down_counter(
            names.TRADING_WEBSOCKET_CONNECTIONS, unit="{connection}", description="Open WebSocket connections.")
        self.reconnects = meter.create_counter(
            names.TRADING_WEBSOCKET_RECONNECTS, unit="{reconnect}",
            description="WebSocket connections opened again after a drop, by the drop's reason.")
        self.disconnects = meter.create_counter(
            names.TRADING_WEBSOCKET_DISCONNECTS, unit="{disconnect}",
            description="WebSocket connections dropped (not closed by the application), by reason.")
        self.errors = meter.create_counter(
            names.TRADING_WEBSOCKET_ERRORS, unit="{error}",
            description="watch_* calls that raised, by ccxt error class.")

    # --- the hot path ---

    def stream(self, owner: Any, exchange: str, channel: str, symbol: str | None) -> tuple[Stream, bool]:
        """The stream, and whether it is new (its first message)."""
        key = (id(owner), channel, symbol)
        stream = self.streams.get(key)
        if stream is not None:
            return stream, False
        with self._lock:
            stream = self.streams.get(key)
            if stream is not None:
                return stream, False
            symbols = self._symbols.setdefault(exchange, set())
            shown = symbol
            if symbol is not None and symbol not in symbols:
                if len(symbols) >= MAX_SYMBOLS:
                    shown = "_other"
                else:
                    symbols.add(symbol)
            min_rate = self.min_rates.get(f"{symbol}@{channel}", self.min_rates.get(channel))
            stream = Stream(exchange, shown, channel, self.clock(), self.live_seconds, self.stale_seconds, min_rate)
            stream.latency_series = self.latency.series(stream.attributes)
            stream.interval_series = self.interval.series(stream.attributes)
            self.streams[key] = stream
            return stream, True

    def message(self, stream: Stream, now: float, timestamp_ms: Any) -> None:
        """One message of ``stream`` received at ``now`` (unix s); ``timestamp_ms`` is the exchange's, if any."""
        if stream.count:
            interval = now - stream.last
            stream.intervals.append(interval)
            if stream.market:
                usual = stream.usual
                if usual is None:
                    stream.usual = interval
                else:
                    if (stream.intervals_seen >= GAP_WARMUP and interval > GAP_MIN_SECONDS
                            and interval > usual * self.gap_factor):
                        stream.gaps += 1
                        interval = usual * self.gap_factor  # one gap must not become the usual
                    stream.usual = usual + EWMA_ALPHA * (interval - usual)
                stream.intervals_seen += 1
            if len(stream.intervals) >= PENDING_LIMIT:
                self._flush(stream)
        stream.count += 1
        stream.last = now
        if now - stream.window_start >= RATE_WINDOW:
            stream.last_rate = stream.window_count / (now - stream.window_start)
            stream.window_start, stream.window_count = now, 0
        stream.window_count += 1
        if type(timestamp_ms) in (int, float):
            latency = now - timestamp_ms / 1000.0
            stream.latencies.append(latency if latency > 0.0 else 0.0)  # clock skew: not below zero
            if len(stream.latencies) >= PENDING_LIMIT:
                self._flush(stream)

    # --- streams that end ---

    def end(self, owner: Any, channels: Iterable[str] | None = None, symbols: Iterable[str] | None = None) -> int:
        """Forget the streams of ``owner`` (an exchange): all, or those of some channels and
        optionally some symbols. Returns how many."""
        channels = set(channels) if channels is not None else None
        wanted = set(symbols) if symbols is not None else None
        ended = 0
        with self._lock:
            for key in list(self.streams):
                owner_id, channel, symbol = key
                if owner_id != id(owner):
                    continue
                if channels is not None and channel not in channels:
                    continue
                if wanted is not None and symbol not in wanted:
                    continue
                stream = self.streams.pop(key)
                self._flush(stream)
                self._remember_ended(stream)
                now = self.clock()
                self.ended_streams.append((stream, now, self.state(stream, now)))
                ended += 1
        return ended

    # --- reading (collection time) ---

    def _flush(self, stream: Stream) -> None:
        latencies, stream.latencies = stream.latencies, []
        intervals, stream.intervals = stream.intervals, []
        record = stream.latency_series.record
        for value in latencies:
            record(value)
        record = stream.interval_series.record
        for value in intervals:
            record(value)

    def flush(self) -> None:
        for stream in list(self.streams.values()):
            self._flush(stream)

    def _observe_messages(self, options: CallbackOptions) -> Iterable[Observation]:
        # Collection runs callbacks before it reads the histograms: what waits is recorded now.
        self.flush()
        totals: dict[tuple, tuple[int, dict]] = {}
        for stream in list(self.streams.values()):
            key = tuple(stream.attributes.items())
            count, _ = totals.get(key, (0, stream.attributes))
            totals[key] = (count + stream.count, stream.attributes)
        for count, attributes in self._with_ended(totals, "messages").values():
            yield Observation(count, attributes)

    def _with_ended(self, totals: dict, what: str) -> dict:
        """Counters stay monotonic when a stream ends: its counts live on in ``_ended``."""
        ended = self._ended[what]
        merged = dict(totals)
        for key, (count, attributes) in ended.items():
            current = merged.get(key, (0, attributes))
            merged[key] = (current[0] + count, attributes)
        return merged

    def _observe_gaps(self, options: CallbackOptions) -> Iterable[Observation]:
        totals: dict[tuple, tuple[int, dict]] = {}
        for stream in list(self.streams.values()):
            if stream.market:
                key = tuple(stream.attributes.items())
                count, _ = totals.get(key, (0, stream.attributes))
                totals[key] = (count + stream.gaps, stream.attributes)
        for count, attributes in self._with_ended(totals, "gaps").values():
            yield Observation(count, attributes)

    def _observe_rate(self, options: CallbackOptions) -> Iterable[Observation]:
        now = self.clock()
        for stream in list(self.streams.values()):
            if stream.market:
                rate = stream.rate(now)
                if rate is not None:
                    yield Observation(rate, stream.attributes)

    def _observe_below_min(self, options: CallbackOptions) -> Iterable[Observation]:
        now = self.clock()
        for stream in list(self.streams.values()):
            if stream.market and stream.min_rate is not None:
                rate = stream.rate(now)
                if rate is not None:
                    yield Observation(1 if rate < stream.min_rate else 0, stream.attributes)

    def _observe_stream_status(self, options: CallbackOptions) -> Iterable[Observation]:
        now = self.clock()
        for stream in list(self.streams.values()):
            state = self.state(stream, now)
            if state is not None:
                for name in MARKET_DATA_STATES:
                    yield Observation(1 if name == state else 0,
                                      {**stream.attributes, names.TRADING_MARKET_DATA_STATE: name})

    @staticmethod
    def state(stream: Stream, now: float) -> str | None:
        """LIVE / DELAYED / STALE of a market stream by its own thresholds (None for account streams)."""
        if not stream.market:
            return None
        return freshness(now - stream.last, stream.live, stream.stale)

    def market_data_source(self) -> Iterable[tuple[str, str | None, float, float, float]]:
        """For the trading meters: the last message of every market stream, with its thresholds."""
        for stream in list(self.streams.values()):
            if stream.market and stream.symbol is not None and stream.symbol != "_other":
                yield stream.symbol, stream.exchange, stream.last, stream.live, stream.stale

    def _remember_ended(self, stream: Stream) -> None:
        counts = (("messages", stream.count), ("gaps", stream.gaps)) if stream.market else (("messages", stream.count),)
        for what, value in counts:  # account streams have no gaps, ended or not
            ended = self._ended[what]
            key = tuple(stream.attributes.items())
            count, attributes = ended.get(key, (0, stream.attributes))
            ended[key] = (count + value, attributes)
