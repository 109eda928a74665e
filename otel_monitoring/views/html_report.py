"""The report as one self-contained HTML file: inline CSS and SVG, no script, and a
Content-Security-Policy that forbids every fetch, so opening it makes no network request.
Readable on a phone: one column that becomes a grid on wider screens."""

from __future__ import annotations

import time
from html import escape

from . import formatting as fmt
from . import svg
from .overview import Reading
from .report_data import ReportData
from .states import CSS_CLASS, State

# No default source at all: inline styles and data: images only; no script, font, frame or connection.
CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

STYLE = """
:root{--ok:#1e9e4a;--warn:#d39b00;--crit:#d0342c;--unknown:#8a8f98;--ink:#1d2126;--muted:#5d636b}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:#f4f5f7}
header{padding:14px 16px;background:#1d2126;color:#fff}
header h1{margin:0;font-size:1.25rem}
header p{margin:2px 0 0;color:#c9ccd1;font-size:.85rem}
main{padding:12px;max-width:1280px;margin:0 auto}
section{background:#fff;border-radius:10px;padding:12px 14px;margin:0 0 12px;box-shadow:0 1px 2px rgba(0,0,0,.06)}
h2{font-size:1rem;margin:0 0 8px}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
.card{border-radius:8px;padding:10px 12px;color:#fff;min-height:78px}
.card .label{font-size:.8rem;opacity:.9}.card .value{font-size:1.5rem;font-weight:650}
.card .detail{font-size:.75rem;opacity:.9;overflow-wrap:anywhere}
.card.ok{background:var(--ok)}.card.warn{background:var(--warn)}.card.crit{background:var(--crit)}.card.unknown{background:var(--unknown)}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(300px,1fr));gap:12px}
figure{margin:0}figcaption{font-size:.85rem;color:var(--muted);margin-bottom:2px}
figcaption b{color:var(--ink)}
svg.chart{width:100%;height:auto;display:block}
svg.pct{width:160px;max-width:100%}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;font-size:.85rem}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #eceef1;white-space:nowrap}
td.num,th.num{text-align:right}
td.ok{color:var(--ok)}td.warn{color:var(--warn);font-weight:600}td.crit{color:var(--crit);font-weight:700}
.costbar{height:10px;border-radius:5px;background:#4a7fd0}
.costrow{display:grid;grid-template-columns:minmax(90px,35%) 1fr auto;gap:8px;align-items:center;font-size:.85rem;margin:4px 0}
.sev{display:inline-block;border-radius:4px;padding:0 6px;color:#fff;font-size:.75rem}
.sev.info{background:#4a7fd0}.sev.warning{background:var(--warn)}.sev.critical{background:var(--crit)}.sev.emergency{background:#7a0f0a}
.note{color:var(--muted);font-size:.85rem}
.problems{color:#8a5a00}
td.name{white-space:normal;overflow-wrap:anywhere}
@media (max-width:600px){.wide{display:none}main{padding:8px}section{padding:10px}table{font-size:.78rem}th,td{padding:3px 3px}}
"""


def _card(reading: Reading) -> str:
    value = fmt.number(reading.value, reading.unit)
    detail = f'<div class="detail">{escape(reading.detail)}</div>' if reading.detail else ""
    return (f'<div class="card {CSS_CLASS[reading.state]}" data-state="{CSS_CLASS[reading.state]}">'
            f'<div class="label">{escape(reading.label)}</div><div class="value">{escape(value)}</div>{detail}</div>')


def _trend_figure(trend, start: float, end: float) -> str:
    last = "—" if trend.current is None else fmt.number(trend.current, trend.unit if trend.unit != "/s" else "")
    chart = svg.line_chart(trend.title, trend.points, trend.unit, start, end, trend.threshold)
    return f'<figure><figcaption><b>{escape(trend.title)}</b> · now {escape(last)}</figcaption>{chart}</figure>'


def _latency_table(data: ReportData) -> str:
    rows = [r for r in data.latency if r.p50 is not None]
    if not rows:
        return '<p class="note">No operations recorded.</p>'
    low = min(min(r.p50 for r in rows), min((r.p99 or r.p50) for r in rows)) * 0.8
    high = max((r.p99 or r.p95 or r.p50) for r in rows) * 1.25
    body = []
    for row in rows:
        body.append(
            f'<tr class="op {CSS_CLASS[row.state]}"><td class="name">{escape(row.component)}</td><td class="name">{escape(row.operation)}</td>'
            f'<td class="num wide">{fmt.count(row.count)}</td>'
            f'<td class="num {CSS_CLASS[row.error_state]}">{fmt.percent(row.error_pct)}</td>'
            f'<td class="num">{fmt.duration(row.p50)}</td><td class="num {CSS_CLASS[row.latency_state]}">{fmt.duration(row.p95)}</td>'
            f'<td class="num">{fmt.duration(row.p99)}</td>'
            f'<td class="wide">{svg.percentile_bar(row.p50, row.p95, row.p99, low, high, row.state)}</td></tr>')
    return ('<div class="scroll"><table class="latency"><thead><tr><th>Component</th><th>Operation</th>'
            '<th class="num wide">Calls</th><th class="num">Errors</th><th class="num">p50</th><th class="num">p95</th>'
            '<th class="num">p99</th><th class="wide">p50 ● · p95 | · to p99 (log scale)</th></tr></thead><tbody>'
            + "".join(body) + "</tbody></table></div>")


def _feeds_table(data: ReportData) -> str:
    feeds = data.overview.feeds
    if not feeds:
        return ""
    body = "".join(
        f'<tr class="op {CSS_CLASS[f.state]}"><td class="name">{escape(f.exchange)}</td><td class="name">{escape(f.symbol)}</td>'
        f'<td class="name">{escape(f.channel)}</td><td class="num">{fmt.count(f.messages)}</td>'
        f'<td class="num">{"-" if f.rate is None else f"{f.rate:.2f}/s"}</td>'
        f'<td class="num">{fmt.duration(f.p95)}</td><td class="num">{fmt.count(f.gaps)}</td>'
        f'<td class="name">{escape(f.freshness or "unknown")}</td><td class="name">{escape(f.symbol_freshness or "-")}</td>'
        '</tr>' for f in feeds)
    return ('<section id="feeds"><h2>Market-data feeds (WebSocket)</h2><div class="scroll"><table class="latency">'
            '<thead><tr><th>Exchange</th><th>Symbol</th><th>Stream</th><th class="num">Messages</th>'
            '<th class="num">Rate</th><th class="num">Latency p95</th><th class="num">Gaps</th><th>Stream state</th>'
            '<th>Symbol state</th></tr></thead><tbody>' + body + '</tbody></table></div>'
            '<p class="note">Stream state: this stream alone, by its own limits (unknown: the stream no longer reports '
            'one, e.g. it ended before this snapshot). Symbol state: the freshest of all '
            'the symbol\'s sources (streams, polled REST data), as the trading KPIs and the STALE alert read it.</p>'
            '</section>')


def _cost_section(data: ReportData) -> str:
    parts = []
    if data.cost_by_type:
        top = max(r.value or 0 for r in data.cost_by_type) or 1
        parts.append(f'<p class="note">Spent in the last {escape(data.window_words)}: <b>{fmt.usd(data.cost_window_usd)}</b></p>')
        for reading in data.cost_by_type:
            share = (reading.value or 0) / top * 100
            parts.append(f'<div class="costrow cost"><span>{escape(reading.label)}</span>'
                         f'<div class="costbar" style="width:{share:.1f}%"></div><span>{fmt.usd(reading.value)}</span></div>')
    else:
        parts.append(f'<p class="note">No cost recorded in the last {escape(data.window_words)}.</p>')
    if data.budget_burn is not None:
        parts.append(_trend_figure(data.budget_burn, data.since_unix, data.as_of_unix))
    for budget in data.overview.budgets:
        parts.append(f'<p class="note">{escape(budget.label)}: <b class="{CSS_CLASS[budget.state]}">'
                     f'{fmt.percent(budget.value)}</b> used</p>')
    return "".join(parts)


def _alert_section(data: ReportData) -> str:
    chart = svg.stacked_days((d.day, d.by_severity) for d in data.alert_days)
    total = sum(sum(d.by_severity.values()) for d in data.alert_days)
    rows = []
    for event in data.alert_events[:100]:
        value = "" if event.get("value") is None else fmt.alert_value(event)
        rows.append(f'<tr class="event"><td>{escape(time.strftime("%m-%d %H:%M", time.gmtime(event["time"])))}</td>'
                    f'<td><span class="sev {escape(event["severity"])}">{escape(event["severity"])}</span></td>'
                    f'<td>{escape(event["event"])}</td><td class="name">{escape(event["name"])}</td><td class="num wide">{escape(value)}</td></tr>')
    table = ('<div class="scroll"><table class="alerts"><thead><tr><th>UTC</th><th>Severity</th><th>Event</th>'
             '<th>Alert</th><th class="num wide">Value</th></tr></thead><tbody>' + "".join(rows) + "</tbody></table></div>"
             if rows else f'<p class="note">No alert events in the last {data.alert_window_days} days.</p>')
    more = f'<p class="note">Latest 100 of {len(data.alert_events)} events.</p>' if len(data.alert_events) > 100 else ""
    return (f'<figure><figcaption><b>Alerts fired per day</b> · {total} in {data.alert_window_days} days</figcaption>{chart}</figure>'
            f'{table}{more}')


def render_html(data: ReportData, refresh_s: int | None = None) -> str:
    """The page; ``refresh_s`` makes it reload itself that often (a meta refresh: no script, and
    the page's policy still forbids every fetch but its own reload)."""
    overall = data.overview.state
    refresh = f'<meta http-equiv="refresh" content="{int(refresh_s)}">\n' if refresh_s else ""
    problems = "".join(f'<p class="problems">{escape(p)}</p>' for p in data.problems)
    trends = "".join(_trend_figure(t, data.since_unix, data.as_of_unix) for t in data.trends) or \
        '<p class="note">No history yet.</p>'
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
{refresh}<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>{escape(data.service)} · monitoring report</title>
<style>{STYLE}</style>
</head>
<body>
<header><h1>{escape(data.service)} <span class="sev {'critical' if overall is State.CRITICAL else 'warning' if overall is State.WARNING else 'info'}">{escape(overall.label)}</span></h1>
<p>As of {escape(fmt.clock(data.as_of_unix))} (the last snapshot) · trends over the {escape(data.window_words)} before (at most) · generated {escape(fmt.clock(data.generated_unix))}</p></header>
<main>
{problems}
<section id="status"><h2>Status</h2><div class="cards">{''.join(_card(c) for c in data.cards)}</div></section>
<section id="trends"><h2>{escape(data.trend_title)}</h2><div class="grid">{trends}</div></section>
<section id="latency"><h2>Latency per operation</h2>{_latency_table(data)}</section>
{_feeds_table(data)}
<div class="grid">
<section id="cost"><h2>Cost and budget</h2>{_cost_section(data)}</section>
<section id="alerts"><h2>Alert history ({data.alert_window_days} days)</h2>{_alert_section(data)}</section>
</div>
</main>
</body>
</html>
"""
