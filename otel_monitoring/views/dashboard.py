"""The terminal dashboard's frame: an Overview rendered as rich renderables that fit the given
terminal size. Every section is one line or a table of one-line rows (no wrapping), so the frame's
height is known before it is drawn: at 80x24 everything has a line, and a larger terminal gets
more rows, bars and columns."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from . import formatting as fmt
from .overview import Overview, Reading
from .states import RICH_COLOUR, State

LABEL = "bold cyan"
DIM = "bright_black"
WIDE = 110          # from here on: bars next to the gauges and the count column
STALE_AFTER_S = 60  # a snapshot this old is shown in yellow, ten times that in red


def _style(state: State) -> str:
    return RICH_COLOUR[state]


def _bar(percent: float | None, state: State, cells: int = 10) -> Text:
    filled = 0 if percent is None else max(0, min(cells, round(percent / 100 * cells)))
    return Text("▮" * filled, style=_style(state)) + Text("▯" * (cells - filled), style=DIM)


def _section(title: str, parts: list[Text], width: int, max_lines: int = 2) -> list[Text]:
    """'TITLE   part · part · part', wrapped between parts onto at most ``max_lines`` lines (the
    last one cut with an ellipsis), so a narrow terminal loses detail, not values."""
    indent = 8
    lines = [Text(f"{title:<{indent}}", style=LABEL)]
    for part in parts:
        line = lines[-1]
        separator = 0 if line.cell_len == indent else 3
        if line.cell_len > indent and line.cell_len + separator + part.cell_len > width and len(lines) < max_lines:
            lines.append(Text(" " * indent))
            line, separator = lines[-1], 0
        if separator:
            line.append(" · ", style=DIM)
        line.append_text(part)
    for line in lines:
        line.no_wrap = True
        line.overflow = "ellipsis"
    return lines


def _reading(reading: Reading, bars: bool = False) -> Text:
    text = Text(f"{reading.label} ", style="default")
    text.append(fmt.number(reading.value, reading.unit), style=_style(reading.state))
    if bars and reading.unit == "%":
        text.append(" ")
        text.append_text(_bar(reading.value, reading.state))
    if reading.detail:
        text.append(f" {reading.detail}", style=DIM)
    return text


def header(ov: Overview, width: int) -> Text:
    state = ov.state
    age_style = DIM
    if ov.age_s is None or ov.age_s > 10 * STALE_AFTER_S:
        age_style = "red"
    elif ov.age_s > STALE_AFTER_S:
        age_style = "yellow"
    left = Text("otel-monitoring ", style="bold")
    left.append(ov.service, style="bold white")
    left.append(f"  {fmt.clock(ov.timestamp_unix)}", style=DIM)
    left.append(f" ({fmt.age(ov.age_s)})", style=age_style)
    right = Text(f"● {state.label}", style=f"bold {_style(state)}")
    gap = max(1, width - left.cell_len - right.cell_len)
    line = left + Text(" " * gap) + right
    line.no_wrap = True
    line.overflow = "ellipsis"
    return line


def system_lines(ov: Overview, width: int) -> list[Text]:
    return _section("SYSTEM", [_reading(r, bars=width >= WIDE) for r in ov.system], width)


def cost_lines(ov: Overview, width: int) -> list[Text]:
    parts = [Text("total ") + Text(fmt.usd(ov.cost_total_usd), style="bold")]
    parts += [_reading(b) for b in ov.budgets]
    parts += [Text(f"{c.label} {fmt.usd(c.value)}") for c in ov.cost_by_type[:4]]
    return _section("COST", parts, width)


def trading_lines(ov: Overview, width: int) -> list[Text]:
    parts = []
    for reading in ov.trading:
        if reading.unit == "USD":
            parts.append(Text(f"{reading.label} ") + Text(fmt.usd(reading.value, signed=True), style=_style(reading.state)))
        else:
            parts.append(_reading(reading))
    not_live = [s for s in ov.symbols if s.freshness != "LIVE"]
    if not_live:
        parts.append(Text(" ".join(s.symbol for s in not_live), style=_style(not_live[0].state)))
    return _section("TRADING", parts, width)


def feed_lines(ov: Overview, width: int) -> list[Text]:
    """A part per WebSocket stream, the worst first: symbol, channel, rate, latency p95, state."""
    parts = []
    for feed in ov.feeds:
        channel = feed.channel.removeprefix("watch_")
        text = f"{feed.symbol} {channel}"
        if feed.rate is not None:
            text += f" {feed.rate:.1f}/s"
        if feed.p95 is not None:
            text += f" p95 {fmt.duration(feed.p95)}"
        if feed.freshness and feed.freshness != "LIVE":
            text += f" {feed.freshness}"
            if feed.symbol_freshness and feed.symbol_freshness != feed.freshness:
                text += f" (symbol {feed.symbol_freshness})"  # fresher through another source
        if feed.gaps:
            text += f" {feed.gaps:.0f} gaps"
        parts.append(Text(text, style=_style(feed.state)))
    return _section("FEEDS", parts, width)


def rag_lines(ov: Overview, width: int) -> list[Text]:
    return _section("RAG", [_reading(r) for r in ov.rag], width)


def _fit(items: list, rows: int) -> list:
    """The items that fit in ``rows`` lines, keeping one for '… N more' when some are left out."""
    if len(items) <= rows:
        return items
    return items[: rows - 1] if rows > 1 else items[:1]


def red_table(ov: Overview, width: int, rows: int) -> RenderableType:
    if not ov.red:
        return Text("OPERATIONS  none recorded yet", style=DIM)
    table = Table(box=None, padding=(0, 1), pad_edge=False, expand=False, show_edge=False,
                  header_style=LABEL)
    operation_width = 24 if width >= WIDE else 20
    table.add_column("COMPONENT", no_wrap=True, overflow="ellipsis", max_width=16 if width >= WIDE else 12)
    table.add_column("OPERATION", no_wrap=True, overflow="ellipsis", max_width=operation_width)
    if width >= WIDE:
        table.add_column("CALLS", justify="right", no_wrap=True)
    for title in ("RATE/s", "ERR%", "P50", "P95", "P99"):
        table.add_column(title, justify="right", no_wrap=True)
    shown = _fit(ov.red, rows)
    for row in shown:
        cells = [Text(row.component), Text(row.operation)]
        if width >= WIDE:
            cells.append(Text(fmt.count(row.count)))
        cells += [Text(fmt.rate(row.rate_per_s)),
                  Text(fmt.percent(row.error_pct), style=_style(row.error_state)),
                  Text(fmt.duration(row.p50)), Text(fmt.duration(row.p95), style=_style(row.latency_state)),
                  Text(fmt.duration(row.p99))]
        table.add_row(*cells)
    if len(ov.red) > len(shown) and rows > 1:
        table.add_row(Text(f"… {len(ov.red) - len(shown)} more", style=DIM))
    return table


def alerts_table(ov: Overview, rows: int) -> RenderableType:
    if not ov.alerts:
        return Text.assemble(("ALERTS", LABEL), ("  none active", "green"))
    table = Table(box=None, padding=(0, 1), pad_edge=False, show_edge=False, header_style=LABEL)
    table.add_column("ALERTS", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    table.add_column("NAME", no_wrap=True, overflow="ellipsis", max_width=30)
    table.add_column("VALUE", justify="right", no_wrap=True)
    table.add_column("SINCE", no_wrap=True, overflow="ellipsis")
    shown = _fit(ov.alerts, rows)
    for alert in shown:
        style = _style(alert.colour_state)
        # Value and threshold in the rule's unit (a ratio rule shows 100.0% / 80.0%, not 1 / 0.8).
        value = alert.shown()
        state = alert.state + (" ack" if alert.acknowledged else "")
        since = alert.since[11:19] if len(alert.since) >= 19 else alert.since
        table.add_row(Text(alert.severity.upper(), style=f"bold {style}"), Text(state, style=style),
                      Text(alert.name), Text(value), Text(since, style=DIM))
    if len(ov.alerts) > len(shown) and rows > 1:
        table.add_row(Text(f"… {len(ov.alerts) - len(shown)} more", style=DIM))
    return table


def footer(ov: Overview, hint: str) -> Text:
    text = Text()
    if ov.problems:
        text.append(ov.problems[0], style="yellow")
        text.append("  ")
    text.append(hint, style=DIM)
    text.no_wrap = True
    text.overflow = "ellipsis"
    return text


def render_frame(ov: Overview, width: int = 80, height: int | None = 24, hint: str = "") -> RenderableType:
    """One frame. ``height`` None (``--once`` into a pipe) shows every row."""
    lines: list[RenderableType] = [header(ov, width), *system_lines(ov, width), *cost_lines(ov, width)]
    if ov.trading or ov.symbols:
        lines += trading_lines(ov, width)
    if ov.feeds:
        lines += feed_lines(ov, width)
    if ov.rag:
        lines += rag_lines(ov, width)
    # + the two table headers (an empty section is one line) + the footer
    fixed = len(lines) + bool(ov.red) + bool(ov.alerts) + (1 if hint or ov.problems else 0)
    if height is None:
        red_rows, alert_rows = max(len(ov.red), 1), max(len(ov.alerts), 1)
    else:
        room = max(height - fixed, 2)
        alert_rows = min(max(len(ov.alerts), 1), max(room // 3, 1))
        red_rows = max(room - alert_rows, 1)
        if len(ov.red) < red_rows:  # give what the operations table leaves to the alerts
            alert_rows = min(max(len(ov.alerts), 1), room - max(len(ov.red), 1))
            red_rows = room - alert_rows
    lines.append(red_table(ov, width, red_rows))
    lines.append(alerts_table(ov, alert_rows))
    if hint or ov.problems:
        lines.append(footer(ov, hint))
    return Group(*lines)
