"""`otel-monitoring report --html`: the report's data from a known snapshot directory and history
(values, cost across a counter reset, alert days), the page's structure, and the page opened in
headless Chromium at desktop and phone widths: screenshots taken, charts and cards laid out with
no horizontal overflow on a phone, and no network request at all."""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading
import time
from html.parser import HTMLParser

import pytest

from otel_monitoring.local.history import HistoryStore
from otel_monitoring.views.html_report import render_html
from otel_monitoring.views.report_data import cost_in_window, gather_report
from otel_monitoring.views.snapshot import Snapshot
from otel_monitoring.views.states import State

from test_views_top import KNOWN_ALERTS, NOW, known_metrics, require_tool, write_snapshot_dir
from support import free_port

STEP_S = 600.0
STEPS = 144                      # 24 hours every 10 minutes, plus the sample at the start


def metrics_at(step: int) -> dict:
    """The service over the day: CPU ramps up to critical in the last three hours, cost accrues
    (the execution counter restarts from zero at step 70: a process restart), orders fail 10 %."""
    busy = 0.30 if step < STEPS - 18 else 0.93
    metrics = known_metrics(timestamp=NOW - (STEPS - step) * STEP_S, cpu_idle=(1 - busy, 1 - busy))
    metrics["counters"]["otel_monitoring.cost"] = [
        {"attributes": {"cost.type": "model_inference"}, "value": 0.05 * step, "rate_per_s": 0.0},
        {"attributes": {"cost.type": "execution"}, "value": 0.01 * (step - 70 if step >= 70 else step), "rate_per_s": 0.0},
    ]
    durations = metrics["histograms"]["otel_monitoring.operation.duration"]
    durations[0]["count"], durations[1]["count"] = 9 * (step + 1), 1 * (step + 1)
    metrics["gauges"]["otel_monitoring.cost.budget.utilization"] = [
        {"attributes": {"otel_monitoring.budget.name": "llm", "otel_monitoring.budget.period": "daily"},
         "value": 0.85 * step / STEPS}]
    return metrics


def alert_events():
    """(seconds before NOW, rule, name, severity, event) over the last week."""
    day = 86400
    return [
        (6 * day + 100, "disk", "Disk almost full", "warning", "firing"),
        (3 * day + 100, "errors", "Error rate", "critical", "firing"),
        (3 * day + 50, "errors", "Error rate", "critical", "resolved"),
        (3 * day + 10, "errors", "Error rate", "critical", "firing"),
        (8 * day, "old", "Too old to show", "critical", "firing"),
        (3 * 3600, "high_cpu", "High CPU usage", "critical", "firing"),
        (600, "p95", "p95 latency", "warning", "pending"),
    ]


def build_history(directory) -> str:
    write_snapshot_dir(directory, metrics=metrics_at(STEPS), alerts=KNOWN_ALERTS)
    with HistoryStore(str(directory), retention_s=30 * 86400) as store:
        for step in range(STEPS + 1):
            store.record_snapshot(metrics_at(step))
        for before, rule, name, severity, event in alert_events():
            store.record_alert_event(NOW - before, rule, rule, name, severity, event, 1.0)
    return str(directory)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    return build_history(tmp_path_factory.mktemp("report") / "snap")


@pytest.fixture(scope="module")
def data(report_dir):
    return gather_report(report_dir, now=NOW)


def cost_snapshots(*values):
    return [Snapshot(timestamp_unix=float(t), counters={"otel_monitoring.cost": [
        {"attributes": {"cost.type": "execution"}, "value": v}]}) for t, v in values]


def test_cost_in_window_counts_restarts_and_series_born_inside_it():
    key = '{"cost.type": "execution"}'
    # Stood at 1.0 when the window opened, grew to 3.0, restarted (0.5), grew to 2.0.
    costs, total, cumulative = cost_in_window(cost_snapshots((0, 1.0), (1, 3.0), (2, 0.5), (3, 2.0)), {key: 1.0})
    assert total == pytest.approx(2.0 + 0.5 + 1.5) and costs[0].label == "execution"
    assert cumulative == [(0, 0.0), (1, 2.0), (2, 2.5), (3, 4.0)]
    # No value before the window: the series began in it, its first value was spent there.
    _, total, _ = cost_in_window(cost_snapshots((5, 0.25), (6, 0.5)), {})
    assert total == pytest.approx(0.5)


def test_report_data_from_the_history(data):
    cards = {c.label: c for c in data.cards}
    assert cards["CPU"].state is State.CRITICAL and cards["CPU"].value == pytest.approx(93.0)
    assert cards["Disk"].state is State.WARNING
    assert cards["Memory"].state is State.OK
    assert cards["Active alerts"].value == 1 and cards["Active alerts"].state is State.CRITICAL
    assert cards["Error rate"].state is State.CRITICAL        # 10 % of the orders fail
    trends = {t.title: t for t in data.trends}
    cpu = trends["CPU %"]
    assert cpu.points[0] == (pytest.approx(NOW - STEPS * STEP_S), pytest.approx(30.0))
    assert cpu.last == pytest.approx(93.0)
    assert len(cpu.points) == STEPS + 1
    # Between two samples 10 orders of which 1 error, 10 retrievals and 20 chats... only the
    # orders and retrievals grow here: 10 + 0 calls over 600 s and 1 error in 10.
    assert trends["Error rate %"].last == pytest.approx(10.0)
    assert trends["Calls per second"].last == pytest.approx(10 / STEP_S)
    costs = {c.label: c.value for c in data.cost_by_type}
    assert costs["model_inference"] == pytest.approx(0.05 * STEPS)
    assert costs["execution"] == pytest.approx(0.69 + 0.74)
    assert data.cost_window_usd == pytest.approx(0.05 * STEPS + 1.43)
    assert data.budget_burn.title == "Daily budget used %" and data.budget_burn.last == pytest.approx(85.0)
    per_day = {d.day: d.by_severity for d in data.alert_days}
    assert len(per_day) == 7
    assert sum(sum(d.values()) for d in per_day.values()) == 4    # the 8-day-old one and 'pending' left out
    assert per_day[time.strftime("%Y-%m-%d", time.gmtime(NOW - 3 * 86400 - 100))] == {"critical": 2}
    assert data.alert_events[0]["name"] == "p95 latency"           # newest first
    assert data.trend_title == "Last 24 hours"


class PageStructure(HTMLParser):
    """Counts what the report is made of, and every attribute that could fetch something."""

    def __init__(self):
        super().__init__()
        self.cards: list[str] = []
        self.charts: dict[str, int] = {}
        self.fetching: list[str] = []
        self.tags: set[str] = set()
        self.csp = ""

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        classes = (attrs.get("class") or "").split()
        if "card" in classes:
            self.cards.append(attrs.get("data-state"))
        if tag == "svg" and "chart" in classes:
            kind = classes[1]
            self.charts[kind] = self.charts.get(kind, 0) + 1
        for name in ("src", "href", "action", "srcset", "poster", "data"):
            if attrs.get(name) and not attrs[name].startswith("data:"):
                self.fetching.append(f"{tag} {name}={attrs[name]}")
        if attrs.get("http-equiv") == "Content-Security-Policy":
            self.csp = attrs.get("content", "")


def test_page_structure_is_self_contained(data):
    page = render_html(data)
    structure = PageStructure()
    structure.feed(page)
    assert structure.fetching == [] and "script" not in structure.tags
    assert "default-src 'none'" in structure.csp
    assert "http://" not in page and "https://" not in page
    assert structure.charts["line"] >= 6                           # CPU, memory, disk, calls, errors, p95 + budget
    assert structure.charts["days"] == 1 and structure.charts["pct"] == 3   # one per operation
    assert structure.cards.count("crit") >= 3 and "warn" in structure.cards and "ok" in structure.cards


# --- in a real browser ---

class LoggingHandler(http.server.SimpleHTTPRequestHandler):
    requests: list[str] = []

    def log_message(self, format, *args):  # every request the browser makes, kept for the test
        LoggingHandler.requests.append(self.path)


@pytest.fixture
def served(tmp_path, data):
    """The report and a phone-sized harness page, served from 127.0.0.1 by a server that logs
    every request."""
    (tmp_path / "report.html").write_text(render_html(data), encoding="utf-8")
    # The harness measures the report's layout in a 390 px frame (the report itself has no script).
    (tmp_path / "harness.html").write_text("""<!doctype html><html><head><link rel="icon" href="data:,"></head><body style="margin:0">
<iframe id="f" src="report.html" style="width:390px;height:3000px;border:0"></iframe>
<pre id="out"></pre>
<script>
document.getElementById('f').addEventListener('load', function () {
  var d = this.contentDocument, cards = d.querySelectorAll('.card');
  // Detail columns (.wide, e.g. the per-operation percentile bars) are hidden on a phone on purpose.
  var charts = Array.prototype.filter.call(d.querySelectorAll('svg.chart'), function (c) { return !c.closest('.wide'); });
  var drawn = Array.prototype.filter.call(charts, function (c) { var r = c.getBoundingClientRect(); return r.width > 50 && r.height > 10; });
  var visible = Array.prototype.filter.call(cards, function (c) { var r = c.getBoundingClientRect(); return r.width > 100 && r.right <= 390; });
  var overflow = Array.prototype.filter.call(d.querySelectorAll('section'), function (s) { return s.getBoundingClientRect().right > 390; });
  // Every operation's p95 (the 6th cell) on screen, not scrolled off to the right.
  var p95 = d.querySelectorAll('table.latency tbody td:nth-child(6)');
  var p95Visible = Array.prototype.filter.call(p95, function (c) { return c.getBoundingClientRect().right <= 390; });
  document.getElementById('out').textContent = JSON.stringify({scrollWidth: d.documentElement.scrollWidth,
    charts: charts.length, drawn: drawn.length, cards: cards.length, visibleCards: visible.length,
    overflowingSections: overflow.length, p95Cells: p95.length, p95Visible: p95Visible.length,
    bodyFont: getComputedStyle(d.body).fontSize});
});
</script></body></html>""", encoding="utf-8")
    LoggingHandler.requests = []
    handler = lambda *a, **k: LoggingHandler(*a, directory=str(tmp_path), **k)  # noqa: E731 - the handler factory http.server expects
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield tmp_path, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def chromium(tmp_path, *args, timeout=120):
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"
    command = [require_tool("chromium"), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--disable-default-apps", "--no-default-browser-check", "--hide-scrollbars",
               f"--user-data-dir={profile}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout)


def png_size(path):
    with open(path, "rb") as handle:
        header = handle.read(24)
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(header[16:20], "big"), int.from_bytes(header[20:24], "big")


def test_report_in_headless_chromium_desktop_and_phone(served):
    require_tool("chromium")
    directory, base = served
    shots = {}
    for name, size in (("desktop", "1280,2200"), ("phone", "390,4200")):
        shot = directory / f"report-{name}.png"
        done = chromium(directory, f"--window-size={size}", f"--screenshot={shot}", f"{base}/report.html")
        assert shot.exists(), done.stderr[-2000:]
        shots[name] = png_size(shot)
    assert shots == {"desktop": (1280, 2200), "phone": (390, 4200)}
    # The only requests the browser made: the page itself, once per screenshot (no fonts, no CDN,
    # no favicon: the icon is inline).
    assert LoggingHandler.requests == ["/report.html", "/report.html"]
    LoggingHandler.requests = []
    done = chromium(directory, "--virtual-time-budget=5000", "--dump-dom", f"{base}/harness.html")
    start = done.stdout.index('<pre id="out">') + len('<pre id="out">')
    layout = json.loads(done.stdout[start:done.stdout.index("</pre>", start)].replace("&quot;", '"'))
    assert layout["scrollWidth"] <= 390, layout                    # no sideways scrolling on a phone
    assert layout["overflowingSections"] == 0, layout
    assert layout["charts"] >= 8 and layout["drawn"] == layout["charts"], layout
    assert layout["visibleCards"] == layout["cards"] >= 8, layout
    assert layout["p95Visible"] == layout["p95Cells"] == 3, layout
    assert sorted(LoggingHandler.requests) == ["/harness.html", "/report.html"]


def test_report_command_writes_the_file(report_dir, tmp_path):
    target = tmp_path / "out.html"
    done = subprocess.run([sys.executable, "-m", "otel_monitoring.cli", "report", "--dir", report_dir,
                           "--html", str(target)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    page = target.read_text(encoding="utf-8")
    assert "trading-bot" in page and 'class="chart line' in page
    missing = subprocess.run([sys.executable, "-m", "otel_monitoring.cli", "report", "--dir", str(tmp_path / "no"),
                              "--html", str(target)], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and "not a directory" in missing.stderr


def test_a_short_history_is_charted_over_its_own_span(tmp_path):
    directory = str(tmp_path / "snap")
    write_snapshot_dir(directory, metrics=known_metrics(timestamp=NOW))
    with HistoryStore(directory) as store:
        for minutes in (2, 1, 0):
            store.record_snapshot(known_metrics(timestamp=NOW - 60 * minutes))
    data = gather_report(directory, now=NOW)
    assert data.since_unix == NOW - 120 and data.trend_title.startswith("Since ")
    cpu = next(t for t in data.trends if t.title == "CPU %")
    assert len(cpu.points) == 3
    assert data.cost_window_usd == pytest.approx(12.35)    # the counters began inside the window
    assert ">04:58:00</text>" in render_html(data)          # a short span gets seconds on its axis
