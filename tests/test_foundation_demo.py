"""The main job: `otel-monitoring demo` runs the examples on the embedded file default and summarises;
then what a new user reads after it, through the real CLI: the summary, `alerts list`, `top --once`
and `report --html` agree, because all of them read the run's final snapshot and alert evaluation;
each alert value is written by its rule's unit (a state rule as the state); the demo's own workload
trips no alert beyond its planted faults. One demo run serves every test here."""


from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys

import pytest

from otel_monitoring.views.formatting import alert_value
from support import attributes as span_attributes, clean_env, read_otlp_file, spans_from_requests

CLI = os.path.join(os.path.dirname(sys.executable), "otel-monitoring")


def _cli(*args: str, cwd: str) -> str:
    done = subprocess.run([CLI, *args], env=clean_env(), capture_output=True, text=True, timeout=240, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One demo run (all examples) and what the user then reads from it."""
    where = tmp_path_factory.mktemp("demo")
    data = where / "otel-data"
    summary = _cli("demo", "--duration", "3", "--output", str(data), cwd=str(where))
    listed = json.loads(_cli("alerts", "list", "--dir", str(data), "--json", cwd=str(where)))
    table = _cli("alerts", "list", "--dir", str(data), "--history", "1h", cwd=str(where))
    top = _cli("top", "--once", "--width", "200", "--dir", str(data), cwd=str(where))
    _cli("report", "--html", str(where / "report.html"), "--dir", str(data), cwd=str(where))
    live = json.loads((data / "metrics_live.json").read_text())
    return {"summary": summary, "listed": listed, "table": table, "top": top, "live": live, "data": data,
            "report": (where / "report.html").read_text(encoding="utf-8")}


def test_demo_writes_otlp_files_and_prints_a_summary(run):
    out, data = run["summary"], run["data"]
    assert str(data / "traces.jsonl") in out
    spans = [span for _r, _s, span in spans_from_requests(read_otlp_file(data / "traces.jsonl", "traces"))]
    assert len(spans) > 10
    # The summary's operations are top's rows, with the same calls, error rate and percentiles (the
    # summary printed exact percentiles from its spans, top the histograms' estimate: 30.2 ms and 40 ms
    # for one p95). Rows are component, operation, calls, err%, p50, p95, p99; top adds RATE/s.
    header = re.search(r"^component\s+operation\s+calls\s+err%\s+p50\s+p95\s+p99$", out, re.M)
    assert header, out
    table = out[header.end():].lstrip("\n").split("\n(p50/p95/p99", 1)[0].splitlines()
    top_rows = {}
    for line in run["top"].splitlines():
        cells = line.split()
        if len(cells) >= 8 and re.fullmatch(r"\d+", cells[-6]) and cells[-4].endswith("%"):
            top_rows[" ".join(cells[:-6])] = cells[-6:-5] + cells[-4:]
    assert len(table) >= 10, out

    def top_row(key):  # top cuts a long operation name to its column ("similarity_search_with_…")
        return next((v for k, v in top_rows.items() if k == key or (k.endswith("…") and key.startswith(k[:-1]))), None)

    for row in table:
        cells = row.split()
        assert top_row(" ".join(cells[:-5])) == cells[-5:], (row, top_rows)
    # Calls of our instrumentation are its spans: ccxt.<method> spans, one per ccxt row's call.
    for row in table:
        cells = row.split()
        if cells[0] == "ccxt":
            assert int(cells[-5]) == sum(1 for span in spans if span.name == f"ccxt.{cells[1]}"), row
    logs = read_otlp_file(data / "logs.jsonl", "logs")
    assert any(record.trace_id for request in logs for rl in request.resource_logs
               for sl in rl.scope_logs for record in sl.log_records)


def _summary_alerts(summary: str) -> dict[str, tuple[str, str, str]]:
    section = summary.split("\nAlerts (", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    rows = {}
    for line in section:
        found = re.match(r"\s+(\w+)\s+(\w+)\s+(.+?)\s+value (.+) \(threshold (.+)\)$", line)
        if found:
            state, _severity, alert_id, value, threshold = found.groups()
            rows[alert_id] = (state, value, threshold)
    return rows


def _table_alerts(table: str, ids: list[str]) -> dict[str, tuple[str, str, str]]:
    """`alerts list`'s rows by alert id: state, value, threshold."""
    rows = {}
    for line in table.split("\n\n", 1)[0].splitlines()[1:]:
        alert_id = next(i for i in sorted(ids, key=len, reverse=True) if f" {i} " in line)
        state = line.split()[0]
        value, threshold = line.split(f" {alert_id} ", 1)[1].split()[:2]
        rows[alert_id] = (state, value, threshold)
    return rows


def _gauge(live: dict, name: str, **attributes: str) -> list[float]:
    return [p["value"] for p in live["gauges"].get(name, [])
            if all(p["attributes"].get(k) == v for k, v in attributes.items())]


def test_the_summary_shows_the_final_alerts_as_alerts_list_does(run):
    """The summary used to be written before the last evaluation, so its values differed from `alerts list`'s."""
    summary = _summary_alerts(run["summary"])
    listed = {a["id"]: (a["state"], alert_value(a), alert_value(a, "threshold")) for a in run["listed"]}
    assert summary == listed, (run["summary"], run["listed"])
    # And as `alerts list` prints them.
    assert _table_alerts(run["table"], list(listed)) == summary, run["table"]
    assert "market_data_stale:SOL/USDT,binance" in summary  # the planted stale quote


def test_one_cpu_value_on_each_screen(run):
    """The summary's host line, `top`'s CPU and the CPU alerts read the final snapshot's host-health sample."""
    (cpu,) = _gauge(run["live"], "otel_monitoring.host.resource.utilization", **{"otel_monitoring.host.resource": "cpu"})
    shown = f"{cpu * 100:.1f}"
    host_line = next(line for line in run["summary"].splitlines() if line.startswith("Host health:"))
    assert f"cpu {shown} %" in host_line, host_line
    assert re.search(rf"CPU {re.escape(shown)}% ", run["top"]), run["top"]
    for alert in run["listed"]:
        if alert["rule_id"] in ("high_cpu", "critical_cpu"):
            assert _summary_alerts(run["summary"])[alert["id"]][1] == f"{shown}%"
    # The default cpu health check's own reading is not printed beside it.
    checks = next(line for line in run["summary"].splitlines() if line.startswith("Health checks:"))
    assert not re.search(r"cpu \w+ \(utilization", checks), checks


def test_a_state_rule_shows_its_state_and_every_view_formats_by_unit(run):
    summary = _summary_alerts(run["summary"])
    assert summary["market_data_stale:SOL/USDT,binance"][1:] == ("STALE", "STALE")
    assert "100.0% / 100.0%" not in run["top"]
    assert re.search(r"Symbol STALE\s+STALE\s", run["top"]), run["top"]
    history = run["table"].split("Alert events of the last 1h:", 1)[1]
    assert re.search(r"market_data_stale:SOL/USDT,binance value STALE", history), history
    assert re.search(r"stale_market_data:SOL/USDT,binance value \d+\.\dm", history), history
    # The report's alert history: the same words, no raw fractions or seconds.
    values = [html.unescape(v) for v in re.findall(r'<td class="num wide">([^<]*)</td>', run["report"])]
    assert "STALE" in values
    for value in values:
        assert re.fullmatch(r"|STALE|not STALE|n/a|\d+(\.\d+)?(%|ms|µs|s|m)|\$[\d.,]+|[\d.]+(e[+-]\d+)?( \S+)?", value), value
        assert not re.fullmatch(r"0\.\d+", value), value  # a ratio shown raw


def test_the_report_shows_each_streams_own_state_never_its_symbols(run):
    own = {(p["attributes"].get("trading.exchange"), p["attributes"].get("trading.symbol")):
           p["attributes"].get("trading.market_data.state")
           for p in run["live"]["gauges"].get("trading.market_data.stream.status", []) if p["value"] == 1}
    rows = re.findall(r'<tr class="op [^"]*"><td class="name">([^<]*)</td><td class="name">([^<]*)</td>'
                      r'<td class="name">(watch_[^<]*)</td>(?:<td class="num">[^<]*</td>){4}'
                      r'<td class="name">([^<]*)</td><td class="name">([^<]*)</td></tr>', run["report"])
    assert rows, "no WebSocket rows in the report"
    for exchange, symbol, _channel, stream_state, _symbol_state in rows:
        assert stream_state == own.get((exchange, html.unescape(symbol)), "unknown"), rows


def test_order_success_names_its_exchange_and_the_demo_trips_no_order_alert(run):
    rates = {p["attributes"]["trading.exchange"]: p["value"]
             for p in run["live"]["gauges"].get("trading.order.success_rate", [])}
    assert set(rates) == {"binance", "kraken"}
    worst = min(rates, key=rates.get)
    assert re.search(rf"Order success {rates[worst] * 100:.1f}% {worst} \d+/\d+ filled \(worst of 2\)", run["top"]), \
        run["top"]
    # The kraken bot's limit orders are mostly filled: no alert of its own beside the planted faults.
    assert rates["kraken"] >= 0.8, rates
    # (An order placed but not yet seen filled can read as 0 % for one evaluation: pending at most, and
    # resolved at the next; none is left at the end.)
    assert not [a for a in run["listed"] if a["rule_id"] == "low_order_success_rate" and a["state"] != "resolved"], \
        run["listed"]


def _orders_from_spans(data) -> dict[str, tuple[int, int]]:
    """(placed, filled) per exchange as the workload did it: create_order spans that returned an
    order id, and those ids that any later span showed closed (or filled to their amount)."""
    placed: dict[str, set] = {}
    filled: dict[str, set] = {}
    for _r, _s, span in spans_from_requests(read_otlp_file(data / "traces.jsonl", "traces")):
        attributes = span_attributes(span.attributes)
        exchange, order = attributes.get("trading.exchange"), attributes.get("trading.order.id")
        if not span.name.startswith("ccxt.") or exchange is None or order is None:
            continue
        if span.name == "ccxt.create_order":
            placed.setdefault(exchange, set()).add(order)
        amount, done = attributes.get("trading.order.amount"), attributes.get("trading.order.filled")
        if attributes.get("trading.order.status") == "closed" or (amount and done is not None and done >= amount):
            filled.setdefault(exchange, set()).add(order)
    return {exchange: (len(ids), len(ids & filled.get(exchange, set()))) for exchange, ids in placed.items()}


def test_orders_filled_read_the_same_in_the_summary_and_top_as_the_spans_show(run):
    """The summary said "90 % of placed orders filled" on kraken beside top's "Fill ratio 100.0%": one
    counts orders filled, the other how much of each order's amount filled (the KPI feed's fills).
    Both now give the orders filled as counts and the same percentage; the fill ratio reads "Amount filled"."""
    orders = _orders_from_spans(run["data"])
    assert orders.get("kraken", (0, 0))[0] >= 5, orders  # the async bot's limit orders
    placed, filled = orders["kraken"]
    assert filled < placed, orders  # every tenth order rests until canceled
    for exchange, (placed, filled) in orders.items():
        line = f"  orders on {exchange}: {filled} of {placed} placed orders filled (order success {filled / placed * 100:.1f} %)"
        assert line in run["summary"].splitlines(), (line, run["summary"])
    worst = min(orders, key=lambda e: orders[e][1] / orders[e][0])
    placed, filled = orders[worst]
    assert re.search(rf"Order success {filled / placed * 100:.1f}% {worst} {filled}/{placed} filled ", run["top"]), \
        run["top"]
    assert re.search(r"Amount filled \d+\.\d% ", run["top"]) and "Fill ratio" not in run["top"], run["top"]
    assert "% of placed orders filled" not in run["summary"]


def test_the_reports_calls_per_second_now_is_tops(run):
    """The ended run's report read "Calls per second now 91.7" from its last history interval while top
    read the final snapshot's rates (0.00 on every row): the report's "now" is the snapshot's too."""
    now = re.search(r"<b>Calls per second</b> · now ([^<]*)</figcaption>", run["report"])
    assert now, run["report"]
    rates = []
    for line in run["top"].splitlines():
        cells = line.split()
        # component, operation, CALLS, RATE/s ("—" without a call counter), ERR%, P50, P95, P99
        if len(cells) >= 8 and re.fullmatch(r"\d+", cells[-6]) and cells[-4].endswith("%"):
            if re.fullmatch(r"\d+\.\d\d", cells[-5]):
                rates.append(float(cells[-5]))
    assert rates, run["top"]
    live = sum(p["rate_per_s"] for p in run["live"]["counters"]["otel_monitoring.operation.calls"])
    assert sum(rates) == pytest.approx(live, abs=0.005 * len(rates) + 1e-9), (rates, live)
    assert float(now.group(1).replace(",", "")) == pytest.approx(live, rel=0.01, abs=0.05), (now.group(1), live)
