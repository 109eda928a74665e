"""The current state of a service, as the dashboard and the report's status cards show it: built
from one Snapshot (and the previous one, for rates), with every value already classified.
No rendering here."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from . import formatting as fmt
from . import catalog
from .snapshot import Snapshot, get_attr
from .states import (SEVERITY_ORDER, SEVERITY_STATE, THRESHOLDS,
                     State, Threshold, worst)
from .. import names, thresholds

# p95 latency thresholds (s) by row family: model calls take seconds, the rest is held to the
# packaged alert rules' levels (otel_monitoring.thresholds).
LATENCY_THRESHOLDS = {"gen_ai": Threshold(5.0, 10.0), "trading": Threshold(*thresholds.TRADING_LATENCY_P95_SECONDS)}
DEFAULT_LATENCY = THRESHOLDS["latency_p95_s"]


@dataclass
class Reading:
    """One classified value: a system gauge, a KPI, a budget."""

    label: str
    value: float | None
    unit: str = ""          # "%", "s", "USD", "" (plain number)
    state: State = State.UNKNOWN
    detail: str = ""        # e.g. the worst mount point


@dataclass
class RedRow:
    component: str
    operation: str
    count: float
    rate_per_s: float | None
    error_pct: float | None
    p50: float | None
    p95: float | None
    p99: float | None
    error_state: State = State.UNKNOWN
    latency_state: State = State.UNKNOWN   # of p95, against the row family's thresholds
    outgoing: bool = False                 # an HTTP call made inside another operation: not in totals

    @property
    def state(self) -> State:
        return worst(self.error_state, self.latency_state)


@dataclass
class SymbolFreshness:
    symbol: str
    age_s: float | None
    freshness: str          # LIVE, DELAYED, STALE
    state: State


@dataclass
class FeedRow:
    """One WebSocket market-data stream: exchange, watch method and symbol."""

    exchange: str
    channel: str
    symbol: str
    messages: float | None
    rate: float | None       # messages/s over the last minute
    p95: float | None        # feed latency, s
    gaps: float | None
    freshness: str           # the stream's own LIVE / DELAYED / STALE, or "" when not known
    state: State
    # The symbol's state, from its freshest source (the KPIs' and the STALE alert's): it differs
    # from the stream's when the application also polls the symbol, e.g. over REST.
    symbol_freshness: str = ""


@dataclass
class AlertLine:
    severity: str
    name: str
    state: str              # pending, firing, resolved
    value: float | None
    threshold: float | None
    since: str
    acknowledged: bool
    colour_state: State
    unit: str = ""          # of value and threshold: "1" (shown as %), "s", "USD"...
    indicates: str | None = None  # the state a state-indicator rule tests (its value shows as that state)

    def shown(self) -> str:
        """Value / threshold as every view writes them (a state rule: the state alone)."""
        from .formatting import alert_value

        data = {"value": self.value, "threshold": self.threshold, "unit": self.unit, "indicates": self.indicates}
        text = "" if self.value is None else alert_value(data)
        if self.threshold is not None and not self.indicates:
            text += f" / {alert_value(data, 'threshold')}"
        return text


@dataclass
class Overview:
    service: str
    timestamp_unix: float | None
    age_s: float | None
    source: str
    problems: list[str]
    system: list[Reading]
    red: list[RedRow]
    cost_total_usd: float | None
    cost_by_type: list[Reading]
    budgets: list[Reading]
    trading: list[Reading] = field(default_factory=list)
    symbols: list[SymbolFreshness] = field(default_factory=list)
    rag: list[Reading] = field(default_factory=list)
    alerts: list[AlertLine] = field(default_factory=list)
    feeds: list[FeedRow] = field(default_factory=list)

    @property
    def state(self) -> State:
        """The worst of everything shown: the colour of the header."""
        states = [r.state for r in self.system + self.budgets + self.trading + self.rag]
        states += [r.state for r in self.red] + [s.state for s in self.symbols] + [f.state for f in self.feeds]
        states += [a.colour_state for a in self.alerts if a.state == "firing"]
        return worst(*states)


def as_percent(value: float | None, unit: str) -> float | None:
    """Ratios (unit "1" or none) to percent; values already in % unchanged."""
    if value is None:
        return None
    return value if unit == "%" else value * 100.0


def _first_value(snapshot: Snapshot, candidates: tuple[str, ...]) -> tuple[str | None, float | None]:
    """The summed value of the first candidate present among gauges, then counters."""
    for kind in ("gauges", "counters"):
        name, points = snapshot.find(kind, candidates)
        if name:
            values = [float(p["value"]) for p in points if p.get("value") is not None]
            return name, (sum(values) if values else None)
    return None, None


# --- system ---

def cpu_percent(snapshot: Snapshot) -> tuple[float | None, int]:
    """Busy CPU in % averaged over the CPUs, and the number of CPUs seen.
    The contrib meter reports a ratio per (cpu, state): busy = 1 - idle."""
    name, points = snapshot.find("gauges", catalog.CPU_UTILIZATION)
    if not points:
        return None, 0
    unit = snapshot.unit(name)
    by_cpu: dict[str, dict[str, float]] = defaultdict(dict)
    for point in points:
        attrs = point.get("attributes", {})
        by_cpu[str(get_attr(attrs, "cpu", names.SYSTEM_CPU_LOGICAL_NUMBER))][str(get_attr(attrs, *catalog.STATE))] = float(point["value"])
    busy = []
    for states in by_cpu.values():
        if catalog.CPU_STATE_IDLE in states:
            full = 100.0 if unit == "%" else 1.0
            busy.append(full - states[catalog.CPU_STATE_IDLE])
        else:
            busy.append(sum(states.values()))
    return as_percent(sum(busy) / len(busy), unit), len(by_cpu)


def _used_percent(snapshot: Snapshot, candidates: tuple[str, ...]) -> list[tuple[dict[str, Any], float]]:
    """(attributes, % used) for each 'used' point (or each point when there is no state)."""
    name, points = snapshot.find("gauges", candidates)
    unit = snapshot.unit(name)
    used = [p for p in points if get_attr(p.get("attributes", {}), *catalog.STATE) in (None, "used")]
    return [(p.get("attributes", {}), as_percent(float(p["value"]), unit)) for p in used if p.get("value") is not None]


def host_resource_percent(snapshot: Snapshot, resource: str) -> float | None:
    """The host-health reading of ``resource`` (cpu, memory, disk) in %: the sample the host score
    and the host alert rules read, so the screen shows the value the alerts show."""
    name, points = snapshot.find("gauges", catalog.HOST_RESOURCE_UTILIZATION)
    for point in points:
        if get_attr(point.get("attributes", {}), *catalog.HOST_RESOURCE) == resource and point.get("value") is not None:
            return as_percent(float(point["value"]), snapshot.unit(name))
    return None


def system_readings(snapshot: Snapshot) -> list[Reading]:
    readings = []
    cpu, cpus = cpu_percent(snapshot)
    host_cpu = host_resource_percent(snapshot, "cpu")
    cpu = cpu if host_cpu is None else host_cpu
    readings.append(Reading("CPU", cpu, "%", THRESHOLDS["cpu"].state(cpu), f"{cpus} cpu" if cpus else ""))
    memory = _used_percent(snapshot, catalog.MEMORY_UTILIZATION)
    mem = sum(v for _, v in memory) if memory else None
    host_memory = host_resource_percent(snapshot, "memory")
    mem = mem if host_memory is None else host_memory
    readings.append(Reading("Memory", mem, "%", THRESHOLDS["memory"].state(mem)))
    disks = _used_percent(snapshot, catalog.FILESYSTEM_UTILIZATION)
    if disks:
        attrs, disk = max(disks, key=lambda item: item[1])
        mount = str(get_attr(attrs, *catalog.MOUNTPOINT) or "")
    else:
        disk, mount = None, ""
    readings.append(Reading("Disk", disk, "%", THRESHOLDS["disk"].state(disk), mount))
    _, load = _first_value(snapshot, catalog.LOAD_AVERAGE_1M)
    if load is not None:
        # More runnable tasks than CPUs is saturation; twice as many is critical.
        load_state = Threshold(cpus, 2 * cpus).state(load) if cpus else State.UNKNOWN
        readings.append(Reading("Load 1m", load, "", load_state))
    _, score = _first_value(snapshot, catalog.HOST_HEALTH_SCORE)
    if score is not None:
        readings.append(Reading("Health", score, "", THRESHOLDS["health_score"].state(score)))
    checks = snapshot.find("gauges", catalog.HEALTH_CHECK_STATUS)[1]
    if checks:
        failing = sorted(str(get_attr(p.get("attributes", {}), catalog.HEALTH_CHECK_NAME) or "?")
                         for p in checks if p.get("value") != 1)
        readings.append(Reading("Checks", float(len(checks) - len(failing)), "",
                                State.CRITICAL if failing else State.OK,
                                f"of {len(checks)} ok" + (f", failing: {' '.join(failing)}" if failing else "")))
    return readings


# --- RED ---

def _is_error(attrs: dict[str, Any]) -> bool:
    outcome = get_attr(attrs, catalog.OUTCOME)
    if outcome is not None:
        return str(outcome).lower() in ("error", "failure", "failed")
    if get_attr(attrs, catalog.ERROR_TYPE):
        return True
    if str(get_attr(attrs, names.STATUS_CODE) or "") == "STATUS_CODE_ERROR":  # spanmetrics
        return True
    status = get_attr(attrs, names.HTTP_RESPONSE_STATUS_CODE)
    return status is not None and str(status).isdigit() and int(status) >= 500


def _row_identity(metric: str, attrs: dict[str, Any]) -> tuple[str, str]:
    """(component, operation) naming the row a point belongs to."""
    component = get_attr(attrs, catalog.COMPONENT)
    operation = get_attr(attrs, catalog.OPERATION)
    if component or operation:
        return str(component or metric), str(operation or "")
    if metric in catalog.OUTGOING_HISTOGRAMS:  # one row per method and server called
        method, address, port = (get_attr(attrs, k) for k in catalog.OUTGOING_ROW_KEYS)
        server = f"{address}:{port}" if address is not None and port is not None else address
        return "http.client", " ".join(str(v) for v in (method, server) if v is not None)
    span_name = get_attr(attrs, names.SPAN_NAME)
    if span_name is not None:  # the spanmetrics connector: RED per service and span name
        return str(get_attr(attrs, names.SERVICE_NAME) or metric), str(span_name)
    family = catalog.SUPERSEDED_BY.get(metric, metric)  # old and stable HTTP rows have one name
    for keys in catalog.ROW_KEYS[1:]:
        values = [str(get_attr(attrs, k)) for k in keys if get_attr(attrs, k) is not None]
        if values:
            return family.rsplit(".", 2)[0] if family.count(".") >= 2 else family, " ".join(values)
    return metric, ""


def _cdf(point: dict[str, Any], x: float) -> float:
    """The share of a point's values <= x, piecewise linear through min, p50, p95, p99, max."""
    knots = [(point.get("min"), 0.0), (point.get("p50"), 0.50), (point.get("p95"), 0.95),
             (point.get("p99"), 0.99), (point.get("max"), 1.0)]
    knots = [(float(v), q) for v, q in knots if v is not None]
    if not knots:
        return 0.0
    if x < knots[0][0]:
        return 0.0
    for (x0, q0), (x1, q1) in zip(knots, knots[1:]):
        if x < x1:
            return q0 + (q1 - q0) * (x - x0) / (x1 - x0) if x1 > x0 else q1
    return 1.0


def merged_quantile(points: list[dict[str, Any]], q: float) -> float | None:
    """The q-quantile of several histogram points together (e.g. the success and error points of
    one operation), from each point's percentiles: bisection on the count-weighted mixture."""
    counted = [p for p in points if p.get("count") and p.get("p50") is not None]
    if not counted:
        return None
    if len(counted) == 1:
        return float(counted[0][{0.5: "p50", 0.95: "p95", 0.99: "p99"}[q]])
    total = sum(float(p["count"]) for p in counted)
    low = min(float(p.get("min", p["p50"]) if p.get("min") is not None else p["p50"]) for p in counted)
    high = max(float(p.get("max") if p.get("max") is not None else p.get("p99") or p["p50"]) for p in counted)
    for _ in range(40):  # 2**-40 of the range: far below what is shown
        middle = (low + high) / 2
        if sum(float(p["count"]) * _cdf(p, middle) for p in counted) / total < q:
            low = middle
        else:
            high = middle
    return high


def _duration_unit(snapshot: Snapshot, metric: str) -> str:
    """The unit of a duration histogram; the old HTTP ones are in ms when the data says nothing."""
    return snapshot.unit(metric) or ("ms" if metric in catalog.SUPERSEDED_BY else "s")


def _duration_histograms(snapshot: Snapshot) -> list[str]:
    """The histograms shown as operations, each call in one of them only."""
    known = [n for n in catalog.DURATION_HISTOGRAMS if snapshot.histograms.get(n)]
    known = [n for n in known if not snapshot.histograms.get(catalog.SUPERSEDED_BY.get(n, ""))]
    if catalog.GENAI_DURATION in known and any(
            get_attr(p.get("attributes", {}), catalog.DOMAIN) == catalog.GENAI_RED_DOMAIN
            for p in snapshot.histograms.get(catalog.DURATION_HISTOGRAMS[0], [])):
        known.remove(catalog.GENAI_DURATION)
    others = sorted(n for n in snapshot.histograms
                    if n not in catalog.DURATION_HISTOGRAMS and n not in catalog.NOT_OPERATIONS
                    and snapshot.unit(n) in ("s", "ms"))
    return [n for n in known + others if _duration_unit(snapshot, n) in catalog.SECONDS_PER_UNIT]


def is_model_call(metric: str, operation: str) -> bool:
    """A model call (chat, embeddings...), held to seconds rather than the milliseconds of the rest."""
    return metric.startswith("gen_ai.") or operation.split(" ")[0] in catalog.MODEL_OPERATIONS


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def red_rows(snapshot: Snapshot, previous: Snapshot | None = None,
             quantiles: tuple[float, ...] = (0.50, 0.95, 0.99)) -> list[RedRow]:
    """One row per (component, operation) of every duration histogram, its points (one per
    outcome or error type) merged."""
    rows = []
    for metric in _duration_histograms(snapshot):
        groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for point in snapshot.histograms[metric]:
            groups[_row_identity(metric, point.get("attributes", {}))].append(point)
        for (component, operation), points in groups.items():
            count = sum(float(p.get("count") or 0) for p in points)
            errors = sum(float(p.get("count") or 0) for p in points if _is_error(p.get("attributes", {})))
            scale = catalog.SECONDS_PER_UNIT[_duration_unit(snapshot, metric)]
            p50, p95, p99 = (_scaled(merged_quantile(points, q), scale) if q in quantiles else None
                             for q in (0.50, 0.95, 0.99))
            rate = _rate(snapshot, previous, metric, component, operation, count)
            error_pct = errors / count * 100.0 if count else None
            if is_model_call(metric, operation):
                family = LATENCY_THRESHOLDS["gen_ai"]
            elif points[0].get("attributes", {}).get(catalog.DOMAIN) == "trading":
                family = LATENCY_THRESHOLDS["trading"]
            else:
                family = DEFAULT_LATENCY
            rows.append(RedRow(component, operation, count, rate, error_pct, p50, p95, p99,
                               THRESHOLDS["error_rate"].state(error_pct), family.state(p95),
                               outgoing=metric in catalog.OUTGOING_HISTOGRAMS))
    rows.sort(key=lambda r: (-int(r.state), -r.count, r.component, r.operation))
    return rows


def _rate(snapshot: Snapshot, previous: Snapshot | None, metric: str, component: str, operation: str,
          count: float) -> float | None:
    """Calls per second: the call counter's rate when there is one, else the histogram count's
    change since the previous reading."""
    wanted = {catalog.COMPONENT: component, catalog.OPERATION: operation}
    calls = snapshot.points("counters", catalog.CALL_COUNTERS, wanted)
    rates = [float(p["rate_per_s"]) for p in calls if p.get("rate_per_s") is not None]
    if rates:
        return sum(rates)
    if previous is None or not previous.timestamp_unix or not snapshot.timestamp_unix:
        return None
    elapsed = snapshot.timestamp_unix - previous.timestamp_unix
    if elapsed <= 0:
        return None
    before = sum(float(p.get("count") or 0) for p in previous.histograms.get(metric, [])
                 if _row_identity(metric, p.get("attributes", {})) == (component, operation))
    return max(count - before, 0.0) / elapsed


# --- cost, trading, RAG, alerts ---

def _histogram_mean(snapshot: Snapshot, candidates: tuple[str, ...]) -> tuple[str | None, float | None]:
    """sum / count over all points of the first histogram present (e.g. the mean fill ratio)."""
    name, points = snapshot.find("histograms", candidates)
    count = sum(float(p.get("count") or 0) for p in points)
    return name, (sum(float(p.get("sum") or 0) for p in points) / count if count else None)


def _worst_ratio(snapshot: Snapshot, candidates: tuple[str, ...], threshold: Threshold) -> float | None:
    """The worst of several per-strategy or per-collection ratios, in percent."""
    name, points = snapshot.find("gauges", candidates)
    values = [as_percent(float(p["value"]), snapshot.unit(name)) for p in points if p.get("value") is not None]
    if not values:
        return None
    return max(values) if threshold.higher_is_worse else min(values)


def cost_readings(snapshot: Snapshot) -> tuple[float | None, list[Reading], list[Reading]]:
    name, points = snapshot.find("counters", catalog.COST)
    by_type: dict[str, float] = defaultdict(float)
    for point in points:
        by_type[str(get_attr(point.get("attributes", {}), catalog.COST_TYPE) or "other")] += float(point.get("value") or 0)
    costs = [Reading(t, v, "USD") for t, v in sorted(by_type.items(), key=lambda item: -item[1])]
    total = sum(by_type.values()) if points else None
    budget_name, budget_points = snapshot.find("gauges", catalog.BUDGET_UTILIZATION)
    unit = snapshot.unit(budget_name)
    spent = {json.dumps(p.get("attributes", {}), sort_keys=True): p.get("value")
             for p in snapshot.find("gauges", catalog.BUDGET_SPENT)[1]}
    limits = {json.dumps(p.get("attributes", {}), sort_keys=True): p.get("value")
              for p in snapshot.find("gauges", catalog.BUDGET_LIMIT)[1]}
    budgets = []
    for point in budget_points:
        attrs = point.get("attributes", {})
        label = " ".join(str(v) for v in (get_attr(attrs, *catalog.BUDGET_NAME), get_attr(attrs, *catalog.BUDGET_PERIOD)) if v)
        pct = as_percent(float(point["value"]), unit)
        key = json.dumps(attrs, sort_keys=True)
        detail = f"{fmt.usd(spent[key])} of {fmt.usd(limits[key])}" if spent.get(key) is not None and limits.get(key) else ""
        budgets.append(Reading(f"budget {label}".strip(), pct, "%", THRESHOLDS["budget"].state(pct), detail))
    budgets.sort(key=lambda r: -(r.value or 0))
    return total, costs, budgets


def freshness(age_s: float | None, declared: Any = None) -> tuple[str, State]:
    """LIVE / DELAYED / STALE as the meters declared it, else from the age with the default limits."""
    label = str(declared).upper() if declared else None
    if label not in thresholds.MARKET_DATA_STATES:
        if age_s is None:
            return "UNKNOWN", State.UNKNOWN
        label = thresholds.freshness(age_s, thresholds.MARKET_DATA_LIVE_SECONDS, thresholds.MARKET_DATA_DELAYED_SECONDS)
    return label, {"LIVE": State.OK, "DELAYED": State.WARNING, "STALE": State.CRITICAL}[label]


def _symbol_key(attrs: dict[str, Any]) -> tuple[str, str]:
    return str(get_attr(attrs, *catalog.SYMBOL) or "?"), str(get_attr(attrs, catalog.EXCHANGE) or "")


def symbol_freshness(snapshot: Snapshot) -> list[SymbolFreshness]:
    declared = {_symbol_key(p.get("attributes", {})): get_attr(p.get("attributes", {}), catalog.STALENESS_STATE)
                for p in snapshot.find("gauges", catalog.MARKET_DATA_STATUS)[1] if p.get("value") == 1}
    symbols = []
    for point in snapshot.find("gauges", catalog.MARKET_DATA_STALENESS)[1]:
        key = _symbol_key(point.get("attributes", {}))
        age = None if point.get("value") is None else float(point["value"])
        label, state = freshness(age, declared.get(key))
        symbols.append(SymbolFreshness(key[0], age, label, state))
    symbols.sort(key=lambda s: (-int(s.state), s.symbol))
    return symbols


def _feed_key(attrs: dict[str, Any]) -> tuple[str, str, str]:
    return (str(get_attr(attrs, catalog.EXCHANGE) or ""), str(get_attr(attrs, catalog.CHANNEL) or ""),
            str(get_attr(attrs, *catalog.SYMBOL) or "-"))


def feed_rows(snapshot: Snapshot) -> list[FeedRow]:
    """One row per stream that delivered messages: rate, latency p95, gaps and its symbol's state."""
    values: dict[str, dict[tuple[str, str, str], Any]] = {}
    for label, kind, candidates in (("messages", "counters", catalog.FEED_MESSAGES), ("rate", "gauges", catalog.FEED_RATE),
                                    ("gaps", "counters", catalog.FEED_GAPS),
                                    ("below", "gauges", catalog.FEED_BELOW_MIN_RATE)):
        table: dict[tuple[str, str, str], Any] = {}
        for point in snapshot.find(kind, candidates)[1]:
            if point.get("value") is not None:
                key = _feed_key(point.get("attributes", {}))
                table[key] = table.get(key, 0.0) + float(point["value"])
        values[label] = table
    latency: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for point in snapshot.find("histograms", catalog.FEED_LATENCY)[1]:
        latency[_feed_key(point.get("attributes", {}))].append(point)
    declared = {_symbol_key(p.get("attributes", {})): get_attr(p.get("attributes", {}), catalog.STALENESS_STATE)
                for p in snapshot.find("gauges", catalog.MARKET_DATA_STATUS)[1] if p.get("value") == 1}
    own = {_feed_key(p.get("attributes", {})): get_attr(p.get("attributes", {}), catalog.STALENESS_STATE)
           for p in snapshot.find("gauges", catalog.FEED_STATUS)[1] if p.get("value") == 1}
    rows = []
    for key in sorted(values["messages"]):
        exchange, channel, symbol = key
        p95 = merged_quantile(latency[key], 0.95) if latency.get(key) else None
        symbol_label = str(declared.get((symbol, exchange)) or "")
        # The stream's own state only: a stream that no longer reports one (it ended, or the writer
        # predates stream states) is "" (shown as unknown), never its symbol's state under its name.
        label = str(own.get(key) or "")
        state = worst(DEFAULT_LATENCY.state(p95) if p95 is not None else State.OK,
                      State.WARNING if values["below"].get(key) else State.OK, _stream_state(label, symbol_label))
        rows.append(FeedRow(exchange, channel, symbol, values["messages"][key], values["rate"].get(key), p95,
                            values["gaps"].get(key), label, state, symbol_label))
    rows.sort(key=lambda r: (-int(r.state), r.exchange, r.symbol, r.channel))
    return rows


_FRESHNESS_RANK = {state: rank for rank, state in enumerate(thresholds.MARKET_DATA_STATES)}


def _stream_state(stream: str, symbol: str) -> State:
    """A stream behind its symbol's state (the symbol fresh from another source) is a warning:
    the feed is broken, the data is not. Critical only when the symbol itself is STALE."""
    by_stream = {"DELAYED": State.WARNING, "STALE": State.CRITICAL}.get(stream, State.OK)
    if symbol in _FRESHNESS_RANK and stream in _FRESHNESS_RANK and _FRESHNESS_RANK[symbol] < _FRESHNESS_RANK[stream]:
        return State.WARNING
    return by_stream


def trading_readings(snapshot: Snapshot, red: list[RedRow]) -> tuple[list[Reading], list[SymbolFreshness]]:
    readings = []
    order_rows = [r for r in red if r.operation in catalog.ORDER_OPERATIONS]
    if order_rows:
        orders = sum(r.count for r in order_rows)
        failed = sum(r.count * (r.error_pct or 0) / 100 for r in order_rows)
        readings.append(Reading("Orders", orders, "", THRESHOLDS["error_rate"].state(failed / orders * 100 if orders else None),
                                f"({failed:.0f} failed)" if failed else ""))
    name, fill = _histogram_mean(snapshot, catalog.FILL_RATIO)
    if fill is not None:
        # The fill ratio: how much of each order's amount filled, not how many orders filled (that
        # is Order success); the label says which.
        readings.append(Reading("Amount filled", as_percent(fill, snapshot.unit(name)), "%", State.OK))
    for label, candidates in (("PnL realized", catalog.PNL_REALIZED), ("PnL unrealized", catalog.PNL_UNREALIZED)):
        _, pnl = _first_value(snapshot, candidates)
        if pnl is not None:
            readings.append(Reading(label, pnl, "USD", State.OK if pnl >= 0 else State.WARNING))
    accuracy = _worst_ratio(snapshot, catalog.SIGNAL_ACCURACY, THRESHOLDS["signal_accuracy"])
    if accuracy is not None:
        readings.append(Reading("Signal acc.", accuracy, "%", THRESHOLDS["signal_accuracy"].state(accuracy)))
    _, success_points = snapshot.find("gauges", catalog.ORDER_SUCCESS_RATE)
    success = [(as_percent(float(p["value"]), "1"), str(get_attr(p.get("attributes", {}), names.TRADING_EXCHANGE) or "?"))
               for p in success_points if p.get("value") is not None]
    if success:
        # The worst exchange's rate, named: a 0 % on one venue must not read as the whole book's.
        worst_rate, exchange = min(success)
        on = {names.TRADING_EXCHANGE: exchange}
        placed = snapshot.total("counters", catalog.ORDERS_PLACED, on)
        filled = snapshot.total("counters", catalog.ORDERS_FILLED, on)
        counts = f" {filled or 0:.0f}/{placed:.0f} filled" if placed else ""
        detail = exchange + counts + (f" (worst of {len(success)})" if len(success) > 1 else "")
        readings.append(Reading("Order success", worst_rate, "%", THRESHOLDS["order_success"].state(worst_rate), detail))
    disconnects = snapshot.total("counters", catalog.WEBSOCKET_DISCONNECTS)
    if disconnects is not None:
        readings.append(Reading("WS disconnects", disconnects, "", State.WARNING if disconnects > 3 else State.OK,
                                "since start"))
    symbols = symbol_freshness(snapshot)
    if symbols:
        stale = sum(1 for s in symbols if s.freshness == "STALE")
        readings.append(Reading("Stale symbols", float(stale), "", State.CRITICAL if stale else
                                worst(*(s.state for s in symbols)), f"of {len(symbols)}"))
    return readings, symbols


def rag_readings(snapshot: Snapshot) -> list[Reading]:
    readings = []
    for label, candidates, threshold in (("Hit rate", catalog.RAG_HIT_RATE, THRESHOLDS["hit_rate"]),
                                         ("Empty results", catalog.RAG_EMPTY_RATE, THRESHOLDS["empty_rate"])):
        value = _worst_ratio(snapshot, candidates, threshold)
        if value is not None:
            readings.append(Reading(label, value, "%", threshold.state(value)))
    _, relevance = _histogram_mean(snapshot, catalog.RAG_RELEVANCE)
    if relevance is not None:
        readings.append(Reading("Relevance", relevance, "", State.OK))
    _, token_points = snapshot.find("histograms", catalog.GENAI_TOKEN_USAGE)
    tokens: dict[str, float] = defaultdict(float)
    for point in token_points:
        tokens[str(get_attr(point.get("attributes", {}), catalog.TOKEN_TYPE) or "total")] += float(point.get("sum") or 0)
    for token_type, total in sorted(tokens.items()):
        readings.append(Reading(f"Tokens {token_type}", total, "", State.OK))
    return readings


def alert_lines(snapshot: Snapshot) -> list[AlertLine]:
    lines = []
    for alert in snapshot.alerts:
        severity = str(alert.get("severity") or "info").lower()
        state = str(alert.get("state") or "firing").lower()
        colour = SEVERITY_STATE.get(severity, State.WARNING) if state == "firing" else (
            State.WARNING if state == "pending" else State.OK)
        lines.append(AlertLine(severity, str(alert.get("name") or alert.get("id") or "?"), state,
                               alert.get("value"), alert.get("threshold"), str(alert.get("since") or ""),
                               bool(alert.get("acknowledged")), colour, str(alert.get("unit") or ""),
                               alert.get("indicates") or None))
    order = {"firing": 0, "pending": 1, "resolved": 2}
    lines.sort(key=lambda a: (order.get(a.state, 3), SEVERITY_ORDER.get(a.severity, 9), a.since))
    return lines


def build_overview(snapshot: Snapshot, previous: Snapshot | None = None, now: float | None = None) -> Overview:
    now = time.time() if now is None else now
    red = red_rows(snapshot, previous)
    total, costs, budgets = cost_readings(snapshot)
    trading, symbols = trading_readings(snapshot, red)
    service = snapshot.service.get("name") or "?"
    age = now - snapshot.timestamp_unix if snapshot.timestamp_unix else None
    return Overview(service=service, timestamp_unix=snapshot.timestamp_unix, age_s=age,
                    source=snapshot.source, problems=list(snapshot.problems),
                    system=system_readings(snapshot), red=red, cost_total_usd=total, cost_by_type=costs,
                    budgets=budgets, trading=trading, symbols=symbols, rag=rag_readings(snapshot),
                    alerts=alert_lines(snapshot), feeds=feed_rows(snapshot))
