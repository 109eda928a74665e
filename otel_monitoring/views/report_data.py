"""Everything the HTML report shows, gathered from the snapshot directory: the current status
(metrics_live.json and alerts.json, through the same Overview as ``top``), 24-hour trends and
cost from the history store, and the alert history of the last 7 days. No HTML here."""

from __future__ import annotations

import json
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Callable

from . import catalog
from .overview import Overview, Reading, RedRow, build_overview, is_model_call, red_rows, system_readings
from .snapshot import Snapshot, get_attr, read_snapshot_dir
from .states import SEVERITY_ORDER, THRESHOLDS, State, Threshold

DAY_S = 86400.0
TREND_WINDOW_S = DAY_S
ALERT_WINDOW_S = 7 * DAY_S
BASELINE_LOOKBACK_S = 3600.0    # history rows are at most this far apart (default: a minute)
MAX_CHART_POINTS = 240          # one point per 6 minutes over a day: enough for the eye, small SVG
# `report --window`: the span of the trends, cost and (at least 7 days of) alert history.
WINDOWS = {"1h": 3600.0, "24h": DAY_S, "7d": 7 * DAY_S, "30d": 30 * DAY_S}
_WINDOW_WORDS = {3600.0: "hour", DAY_S: "24 hours", 7 * DAY_S: "7 days", 30 * DAY_S: "30 days"}


def window_words(window_s: float) -> str:
    """``24 hours``, ``7 days``...: how the page names a window."""
    return _WINDOW_WORDS.get(window_s) or f"{window_s / 3600:g} hours"


def window_short(window_s: float) -> str:
    return next((name for name, size in WINDOWS.items() if size == window_s), f"{window_s / 3600:g}h")
HISTOGRAM_FIELDS = ("count", "sum", "p50", "p95", "p99")


@dataclass
class Trend:
    """One chart: a line over the trend window."""

    title: str
    unit: str                              # "%", "s", "USD", "/s"
    points: list[tuple[float, float]]      # (unix time, value), oldest first
    threshold: Threshold | None = None
    now: float | None = None               # the current snapshot's reading, when it has one

    @property
    def last(self) -> float | None:
        return self.points[-1][1] if self.points else None

    @property
    def current(self) -> float | None:
        """What the report prints as "now": the snapshot's reading (as top shows it), else the last point."""
        return self.now if self.now is not None else self.last


@dataclass
class AlertDay:
    day: str                               # YYYY-MM-DD (UTC)
    by_severity: dict[str, int]            # firing events per severity


@dataclass
class ReportData:
    service: str
    generated_unix: float                  # when the report was made
    as_of_unix: float                      # the end of its windows: the last snapshot's time
    since_unix: float                      # the start of the trends: 24 hours before, or the first sample

    @property
    def trend_title(self) -> str:
        if self.as_of_unix - self.since_unix >= self.window_s - 1:
            return f"Last {window_words(self.window_s)}"
        return f"Since {time.strftime('%Y-%m-%d %H:%M', time.gmtime(self.since_unix))} UTC (the history so far)"
    overview: Overview
    cards: list[Reading]
    trends: list[Trend]
    latency: list[RedRow]
    cost_by_type: list[Reading]            # spent within the trend window
    cost_window_usd: float | None
    budget_burn: Trend | None
    alert_days: list[AlertDay]
    alert_events: list[dict[str, Any]]     # newest first
    problems: list[str] = field(default_factory=list)
    window_s: float = TREND_WINDOW_S       # the trends' and the cost's window
    alert_window_days: int = 7

    @property
    def window_words(self) -> str:
        return window_words(self.window_s)


# --- history as a sequence of snapshots ---

def history_snapshots(store: Any, metrics: dict[str, tuple[str, ...]], since: float) -> list[Snapshot]:
    """The history of the given metrics ({kind: names}) as one Snapshot per recorded time, so the
    functions that read the live snapshot read the past the same way."""
    by_time: dict[float, Snapshot] = {}
    for kind, metric_names in metrics.items():
        fields = HISTOGRAM_FIELDS if kind == "histograms" else ("value", "rate_per_s")
        for metric in metric_names:
            points: dict[tuple[float, str], dict[str, Any]] = {}
            for field_name in fields:
                for when, attributes, value in store.series(metric, field=field_name, since=since):
                    key = (when, json.dumps(attributes, sort_keys=True))
                    points.setdefault(key, {"attributes": attributes})[field_name] = value
            for (when, _), point in sorted(points.items(), key=lambda item: item[0][0]):
                snapshot = by_time.setdefault(when, Snapshot(timestamp_unix=when))
                getattr(snapshot, kind).setdefault(metric, []).append(point)
                if kind == "histograms":  # the old HTTP histograms are in ms (the views convert)
                    snapshot.units[metric] = "ms" if metric in catalog.SUPERSEDED_BY else "s"
    return [by_time[t] for t in sorted(by_time)]


def downsample(points: list[tuple[float, float]], limit: int = MAX_CHART_POINTS,
               keep: Callable[[list[float]], float] = max) -> list[tuple[float, float]]:
    """At most ``limit`` points, each bucket of time kept by ``keep`` (max: a spike stays visible)."""
    if len(points) <= limit:
        return points
    start, end = points[0][0], points[-1][0]
    width = (end - start) / limit or 1.0
    buckets: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for when, value in points:
        buckets[min(int((when - start) / width), limit - 1)].append((when, value))
    return [(bucket[-1][0], keep([v for _, v in bucket])) for _, bucket in sorted(buckets.items())]


def system_trends(snapshots: list[Snapshot]) -> list[Trend]:
    trends = {label: Trend(f"{label} %", "%", [], THRESHOLDS[key])
              for label, key in (("CPU", "cpu"), ("Memory", "memory"), ("Disk", "disk"))}
    for snapshot in snapshots:
        for reading in system_readings(snapshot):
            if reading.label in trends and reading.value is not None:
                trends[reading.label].points.append((snapshot.timestamp_unix, reading.value))
    return [t for t in trends.values() if t.points]


def red_trends(snapshots: list[Snapshot]) -> list[Trend]:
    """Calls per second and error rate between consecutive snapshots, and the worst p95."""
    calls = Trend("Calls per second", "/s", [])
    errors = Trend("Error rate %", "%", [], THRESHOLDS["error_rate"])
    p95 = Trend("Worst p95 latency", "s", [], THRESHOLDS["latency_p95_s"])
    previous: tuple[float, dict[tuple[str, str], RedRow]] | None = None
    for snapshot in snapshots:
        # The trend needs no other percentile; outgoing calls are inside the other rows' calls.
        rows = [r for r in red_rows(snapshot, quantiles=(0.95,)) if not r.outgoing]
        if not rows:
            continue
        non_model = [r.p95 for r in rows if r.p95 is not None and r.count >= catalog.MIN_CALLS_FOR_P95
                     and not is_model_call(r.component, r.operation)]
        if non_model:
            p95.points.append((snapshot.timestamp_unix, max(non_model)))
        if previous is not None:
            before_time, before = previous
            elapsed = snapshot.timestamp_unix - before_time
            total = failed = 0.0
            for row in rows:
                old = before.get((row.component, row.operation))
                restarted = old is None or old.count > row.count
                total += row.count - (0.0 if restarted else old.count)
                failed += row.count * (row.error_pct or 0) / 100 - (
                    0.0 if restarted else old.count * (old.error_pct or 0) / 100)
            if elapsed > 0:
                calls.points.append((snapshot.timestamp_unix, total / elapsed))
            if total > 0:
                errors.points.append((snapshot.timestamp_unix, max(failed, 0.0) / total * 100))
        previous = snapshot.timestamp_unix, {(r.component, r.operation): r for r in rows}
    return [t for t in (calls, errors, p95) if t.points]


def _end_calls_at_snapshot(trends: list[Trend], snapshot: Snapshot, red: list[RedRow]) -> None:
    """The calls trend's "now" is the directory snapshot's rate, the sum of top's RATE/s column:
    the history ends at its last sample, while the snapshot can be newer (a run's final snapshot at
    shutdown is not sampled; the chart then ends with it) and says what runs now (an ended process
    calls nothing)."""
    rates = [r.rate_per_s for r in red if not r.outgoing and r.rate_per_s is not None]
    when = snapshot.timestamp_unix
    calls = next((t for t in trends if t.unit == "/s"), None)
    if calls is None or not rates or not when or (calls.points and calls.points[-1][0] > when):
        return
    calls.now = sum(rates)
    if not calls.points or calls.points[-1][0] < when:
        calls.points.append((when, calls.now))


def cost_baselines(store: Any, since: float) -> dict[str, float]:
    """Each cost series' last value before the window (looked for in the hour before it), by its
    attributes. A series without one began inside the window: all of its value was spent there."""
    baselines: dict[str, float] = {}
    for metric in catalog.COST:
        for _, attributes, value in store.series(metric, field="value", since=since - BASELINE_LOOKBACK_S, until=since):
            baselines[json.dumps(attributes, sort_keys=True)] = value  # oldest first: the last one stays
    return baselines


def cost_in_window(snapshots: list[Snapshot], baselines: dict[str, float] | None = None,
                   ) -> tuple[list[Reading], float | None, list[tuple[float, float]]]:
    """Spent per cost type within the window, the total, and the cumulative spend over time.
    ``baselines``: each series' value when the window opened (cost_baselines); a series without
    one started from zero inside the window."""
    by_series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for snapshot in snapshots:
        for point in snapshot.find("counters", catalog.COST)[1]:
            by_series[json.dumps(point.get("attributes", {}), sort_keys=True)].append(
                (snapshot.timestamp_unix, float(point.get("value") or 0)))
    if not by_series:
        return [], None, []
    by_type: dict[str, float] = defaultdict(float)
    steps: dict[float, float] = defaultdict(float)
    for key, values in by_series.items():
        start = (values[0][0], (baselines or {}).get(key, 0.0))
        for (_, before), (when, after) in zip([start] + values, values):
            step = after - before if after >= before else after   # a drop is a restart from zero
            steps[when] += step
            by_type[str(get_attr(json.loads(key), catalog.COST_TYPE) or "other")] += step
    cumulative, running = [], 0.0
    for when in sorted(steps):
        running += steps[when]
        cumulative.append((when, running))
    costs = [Reading(t, v, "USD") for t, v in sorted(by_type.items(), key=lambda item: -item[1])]
    return costs, sum(by_type.values()), cumulative


def budget_trend(snapshots: list[Snapshot], cumulative_cost: list[tuple[float, float]]) -> Trend | None:
    """The daily budget's utilization over time when the meters report it, else the spend."""
    points = []
    for snapshot in snapshots:
        name, found = snapshot.find("gauges", catalog.BUDGET_UTILIZATION)
        daily = [p for p in found if get_attr(p.get("attributes", {}), *catalog.BUDGET_PERIOD) in (None, "daily", "day")]
        if daily:
            value = max(float(p["value"]) for p in daily)
            points.append((snapshot.timestamp_unix, value if snapshot.unit(name) == "%" else value * 100))
    if points:
        return Trend("Daily budget used %", "%", downsample(points), THRESHOLDS["budget"])
    if cumulative_cost:
        return Trend("Spend over the window", "USD", downsample(cumulative_cost))
    return None


def alert_history(store: Any, since: float, now: float, day_count: int = 7,
                  rules: str | None = None) -> tuple[list[AlertDay], list[dict[str, Any]]]:
    """Firing events per day, and the events newest first with their rule's unit (``rules``: the
    rules file, default the settings')."""
    from ..local.rules import with_rule_units

    if rules is None:
        from ..config import load_settings

        rules = load_settings().alert_rules
    events = with_rule_units(store.alert_events(since=since), rules)
    days = []
    for index in range(day_count):
        day_start = now - (day_count - 1 - index) * DAY_S
        day = time.strftime("%Y-%m-%d", time.gmtime(day_start))
        days.append(AlertDay(day, {}))
    by_day = {d.day: d for d in days}
    for event in events:
        if event["event"] != "firing":
            continue
        day = by_day.get(time.strftime("%Y-%m-%d", time.gmtime(event["time"])))
        if day is not None:
            day.by_severity[event["severity"]] = day.by_severity.get(event["severity"], 0) + 1
    return days, list(reversed(events))


def status_cards(overview: Overview) -> list[Reading]:
    """The few numbers an operator wants first, each with its state."""
    cards = [r for r in overview.system if r.label in ("CPU", "Memory", "Disk", "Health")]
    rows = [r for r in overview.red if r.count and not r.outgoing]  # an outgoing call is inside another row
    if rows:
        total = sum(r.count for r in rows)
        errors = sum(r.count * (r.error_pct or 0) / 100 for r in rows)
        pct = errors / total * 100 if total else None
        cards.append(Reading("Error rate", pct, "%", THRESHOLDS["error_rate"].state(pct)))
        # Rows with too few calls for a p95 (a start-up call made once) are not candidates.
        enough = [r for r in rows if r.count >= catalog.MIN_CALLS_FOR_P95 and r.p95 is not None]
        if enough:
            worst_row = max(enough, key=lambda r: (int(r.latency_state), r.p95 or 0))
            cards.append(Reading("Worst p95", worst_row.p95, "s", worst_row.latency_state,
                                 f"{worst_row.component} {worst_row.operation}".strip()))
    if overview.cost_total_usd is not None:
        cards.append(Reading("Cost", overview.cost_total_usd, "USD", State.OK, "since start"))
    cards += overview.budgets[:2]
    cards += [r for r in overview.trading if r.label in ("Stale symbols", "Signal acc.", "Order success")]
    firing = [a for a in overview.alerts if a.state == "firing"]
    worst_alert = max((a.colour_state for a in firing), default=State.OK)
    cards.append(Reading("Active alerts", float(len(firing)), "", worst_alert,
                         ", ".join(sorted({a.severity for a in firing}, key=lambda s: SEVERITY_ORDER.get(s, 9)))))
    return cards


TREND_METRICS = {
    "gauges": catalog.CPU_UTILIZATION + catalog.MEMORY_UTILIZATION + catalog.FILESYSTEM_UTILIZATION + catalog.BUDGET_UTILIZATION,
    "counters": catalog.COST + catalog.CALL_COUNTERS,
    "histograms": catalog.DURATION_HISTOGRAMS,
}


def gather_report(directory: str, now: float | None = None, store: Any = None,
                  window_s: float = TREND_WINDOW_S) -> ReportData:
    from ..local.history import HistoryStore

    snapshot = read_snapshot_dir(directory)
    if now is None:
        # As of the last snapshot: a live service's is seconds old; a stopped one's report shows
        # its last day rather than an empty one.
        now = min(time.time(), snapshot.timestamp_unix or time.time())
    overview = build_overview(snapshot, now=now)
    store = store or HistoryStore(directory)
    since = now - window_s
    snapshots = history_snapshots(store, TREND_METRICS, since)
    trends = [Trend(t.title, t.unit, downsample(t.points), t.threshold)
              for t in system_trends(snapshots) + red_trends(snapshots)]
    _end_calls_at_snapshot(trends, snapshot, overview.red)
    costs, spent, cumulative = cost_in_window(snapshots, cost_baselines(store, since))
    alert_days = max(7, int(round(window_s / DAY_S)))
    days, events = alert_history(store, now - alert_days * DAY_S, now, alert_days)
    cards = status_cards(overview)
    if spent is not None:  # the history knows what the window cost, restarts included
        cards = [Reading(f"Cost {window_short(window_s)}", spent, "USD", State.OK, "all types") if c.label == "Cost"
                 else c for c in cards]
    problems = list(overview.problems)
    if not snapshots:
        problems.append(f"no history in {directory} for the last {window_words(window_s)}: trends are empty")
    if snapshots:  # a history shorter than the window: the charts span what there is
        since = max(since, snapshots[0].timestamp_unix)
    return ReportData(service=overview.service if overview.service != "?" else "service",
                      generated_unix=time.time(), as_of_unix=now,
                      since_unix=since, overview=overview, cards=cards, trends=trends,
                      latency=[r for r in overview.red], cost_by_type=costs, cost_window_usd=spent,
                      budget_burn=budget_trend(snapshots, cumulative), alert_days=days, alert_events=events,
                      problems=problems, window_s=window_s, alert_window_days=alert_days)
