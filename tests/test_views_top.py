"""`otel-monitoring top`: the overview computed from a known snapshot directory (values, states,
merged percentiles, rates), the frame's content and colours at 80x24 and wider, `--once`, and the
live mode in a real terminal (tmux)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time

import pytest
from rich.console import Console

from otel_monitoring.views.dashboard import render_frame
from otel_monitoring.views.overview import build_overview, merged_quantile
from otel_monitoring.views.snapshot import read_snapshot_dir
from otel_monitoring.views.states import State

NOW = 1795237200.0
BUDGET = {"otel_monitoring.budget.name": "llm", "otel_monitoring.budget.period": "daily"}
CLI = [sys.executable, "-m", "otel_monitoring.cli"]


def histogram(attributes, count, p50, p95, p99, low, high):
    return {"attributes": attributes, "count": count, "sum": count * p50, "min": low, "max": high,
            "p50": p50, "p95": p95, "p99": p99}


def known_metrics(timestamp=NOW, cpu_idle=(0.05, 0.087), extra_operations=0):
    """A trading + RAG service under load: CPU critical, disk warning, memory fine."""
    operations = [
        histogram({"component": "trading", "operation": "create_order", "outcome": "success"}, 140, 0.045, 0.140, 0.190, 0.022, 0.190),
        histogram({"component": "trading", "operation": "create_order", "outcome": "error", "error.type": "NetworkError"},
                  10, 0.5, 0.9, 1.0, 0.25, 1.0),
        histogram({"component": "rag", "operation": "retrieve", "outcome": "success"}, 50, 0.02, 0.05, 0.06, 0.01, 0.06),
    ]
    operations += [histogram({"component": "api", "operation": f"GET /items/{i}", "outcome": "success"}, 5, 0.01, 0.02, 0.03, 0.005, 0.03)
                   for i in range(extra_operations)]
    return {
        "schema": 1, "timestamp": "2026-11-22T05:00:00.000Z", "timestamp_unix": timestamp, "interval_s": 5.0,
        "service": {"name": "trading-bot", "instance_id": "i-1", "host": "box"},
        "counters": {
            "otel_monitoring.cost": [{"attributes": {"cost.type": "model_inference"}, "value": 10.0, "rate_per_s": 0.01},
                                     {"attributes": {"cost.type": "execution"}, "value": 2.35, "rate_per_s": 0.0}],
            "otel_monitoring.operation.calls": [{"attributes": {"component": "trading", "operation": "create_order"},
                                                 "value": 150, "rate_per_s": 2.1}],
        },
        "gauges": {
            "system.cpu.utilization": [{"attributes": {"cpu": "0", "state": "idle"}, "value": cpu_idle[0]},
                                       {"attributes": {"cpu": "0", "state": "user"}, "value": 1 - cpu_idle[0]},
                                       {"attributes": {"cpu": "1", "state": "idle"}, "value": cpu_idle[1]}],
            "system.memory.utilization": [{"attributes": {"state": "used"}, "value": 0.452},
                                          {"attributes": {"state": "free"}, "value": 0.548}],
            "system.filesystem.utilization": [
                {"attributes": {"system.filesystem.mountpoint": "/", "state": "used"}, "value": 0.88},
                {"attributes": {"system.filesystem.mountpoint": "/data", "state": "used"}, "value": 0.10}],
            "system.cpu.load_average.1m": [{"attributes": {}, "value": 1.2}],
            "otel_monitoring.cost.budget.utilization": [{"attributes": BUDGET, "value": 0.85}],
            "otel_monitoring.cost.budget.spent": [{"attributes": BUDGET, "value": 8.5}],
            "otel_monitoring.cost.budget.limit": [{"attributes": BUDGET, "value": 10.0}],
            "otel_monitoring.health.check.status": [
                {"attributes": {"otel_monitoring.health.check.name": "disk"}, "value": 1},
                {"attributes": {"otel_monitoring.health.check.name": "exchange_api"}, "value": 0}],
            "trading.pnl.realized": [{"attributes": {"trading.strategy": "s1", "trading.symbol": "BTC/USDT"}, "value": 1300.0},
                                     {"attributes": {"trading.strategy": "s1", "trading.symbol": "ETH/USDT"}, "value": -65.5}],
            "trading.signal.accuracy": [{"attributes": {"trading.strategy": "s1"}, "value": 0.81},
                                        {"attributes": {"trading.strategy": "s2"}, "value": 0.72}],
            # ETH/USDT is 4000 s old; the meters (with their own limits) call BTC/USDT DELAYED at 3 s.
            "trading.market_data.staleness": [
                {"attributes": {"trading.symbol": "BTC/USDT", "trading.exchange": "binance"}, "value": 3.0},
                {"attributes": {"trading.symbol": "ETH/USDT", "trading.exchange": "binance"}, "value": 4000.0},
                {"attributes": {"trading.symbol": "SOL/USDT", "trading.exchange": "binance"}, "value": 1.0}],
            "trading.market_data.status": [
                {"attributes": {"trading.symbol": "BTC/USDT", "trading.exchange": "binance",
                                "trading.market_data.state": state}, "value": 1 if state == "DELAYED" else 0}
                for state in ("LIVE", "DELAYED", "STALE")],
            "rag.retrieval.hit_rate": [{"attributes": {"rag.collection": "docs"}, "value": 0.85}],
        },
        "histograms": {
            "otel_monitoring.operation.duration": operations,
            "trading.order.fill_ratio": [{"attributes": {}, "count": 4, "sum": 3.68, "min": 0.5, "max": 1.0,
                                          "p50": 1.0, "p95": 1.0, "p99": 1.0}],
            "rag.retrieval.relevance": [{"attributes": {"rag.collection": "docs"}, "count": 10, "sum": 7.2, "min": 0.5,
                                         "max": 0.9, "p50": 0.7, "p95": 0.9, "p99": 0.9}],
            "gen_ai.client.operation.duration": [
                histogram({"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini"}, 20, 1.2, 3.0, 4.0, 0.8, 4.0)],
        },
        "units": {"otel_monitoring.operation.duration": "s", "gen_ai.client.operation.duration": "s",
                  "system.cpu.utilization": "1", "otel_monitoring.cost": "USD"},
    }


KNOWN_ALERTS = [
    {"id": "high_cpu", "rule_id": "high_cpu", "name": "High CPU usage", "severity": "critical", "state": "firing",
     "value": 93.1, "threshold": 80.0, "since": "2026-11-22T04:55:00Z", "acknowledged": False},
    {"id": "p95", "rule_id": "p95", "name": "p95 latency", "severity": "warning", "state": "pending",
     "value": 0.14, "threshold": 0.1, "since": "2026-11-22T04:58:00Z", "acknowledged": False},
]


def write_json(path, data):
    """Atomically, as the snapshot writer does: a polling reader never sees half a file."""
    temporary = f"{path}.tmp"
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(data, handle)
    os.replace(temporary, path)


def write_snapshot_dir(directory, metrics=None, alerts=None):
    os.makedirs(directory, exist_ok=True)
    write_json(os.path.join(directory, "metrics_live.json"), metrics or known_metrics())
    write_json(os.path.join(directory, "alerts.json"), {"schema": 1, "timestamp": "2026-11-22T05:00:00Z",
                                                        "alerts": KNOWN_ALERTS if alerts is None else alerts})
    return str(directory)


def render(overview, width=80, height=24):
    """The frame's lines as (text, [(segment text, colour name)])."""
    console = Console(width=width, height=height, force_terminal=True, color_system="truecolor")
    lines = console.render_lines(render_frame(overview, width, height, hint="q quit"), console.options, pad=False)
    return [("".join(s.text for s in line), [(s.text, s.style.color.name if s.style and s.style.color else None)
                                             for s in line]) for line in lines]


def colour_of(lines, token):
    for _, segments in lines:
        for text, colour in segments:
            if token in text:
                return colour
    raise AssertionError(f"{token!r} not in the frame")


@pytest.fixture
def overview(tmp_path):
    return build_overview(read_snapshot_dir(write_snapshot_dir(tmp_path / "snap")), now=NOW + 2)


def test_overview_values_and_states(overview):
    system = {r.label: r for r in overview.system}
    assert system["CPU"].value == pytest.approx(93.15)          # 1 - idle, averaged over 2 cpus
    assert system["CPU"].state is State.CRITICAL
    assert system["Memory"].value == pytest.approx(45.2) and system["Memory"].state is State.OK
    assert (system["Disk"].value, system["Disk"].detail, system["Disk"].state) == (pytest.approx(88.0), "/", State.WARNING)
    assert overview.age_s == pytest.approx(2.0)
    assert overview.cost_total_usd == pytest.approx(12.35)
    assert [(c.label, c.value) for c in overview.cost_by_type] == [("model_inference", 10.0), ("execution", 2.35)]
    budget = overview.budgets[0]
    assert (budget.label, budget.value, budget.state, budget.detail) == ("budget llm daily", pytest.approx(85.0),
                                                                         State.WARNING, "$8.50 of $10.00")
    assert (system["Checks"].value, system["Checks"].state) == (1, State.CRITICAL)
    assert "failing: exchange_api" in system["Checks"].detail
    trading = {r.label: r for r in overview.trading}
    assert (trading["Orders"].value, trading["Orders"].detail, trading["Orders"].state) == (150, "(10 failed)", State.CRITICAL)
    assert trading["Amount filled"].value == pytest.approx(92.0)                 # mean of the histogram
    assert trading["PnL realized"].value == pytest.approx(1234.5)             # summed over symbols
    assert trading["Signal acc."].value == pytest.approx(72.0) and trading["Signal acc."].state is State.WARNING
    rag = {r.label: r for r in overview.rag}
    assert rag["Relevance"].value == pytest.approx(0.72) and rag["Hit rate"].value == pytest.approx(85.0)
    order = next(r for r in overview.red if r.operation == "create_order")
    assert order.rate_per_s == 2.1 and order.count == 150
    assert order.error_pct == pytest.approx(100 * 10 / 150) and order.state is State.CRITICAL
    # 142.5 of 150 calls below p95: all 140 successes (<= 190 ms) and 2.5 of the 10 errors, a quarter
    # of the way from their min (250 ms) to their median (500 ms).
    assert order.p95 == pytest.approx(0.375, rel=1e-6)
    chat = next(r for r in overview.red if r.component == "gen_ai.client")
    assert chat.operation == "chat gpt-4o-mini" and chat.state is State.OK   # model calls: seconds are fine
    assert [(s.symbol, s.freshness) for s in overview.symbols] == [("ETH/USDT", "STALE"), ("BTC/USDT", "DELAYED"),
                                                                    ("SOL/USDT", "LIVE")]
    assert [a.name for a in overview.alerts] == ["High CPU usage", "p95 latency"]
    assert overview.state is State.CRITICAL


def test_merged_quantile_of_one_point_is_its_own():
    point = histogram({}, 10, 0.1, 0.2, 0.3, 0.05, 0.3)
    assert [merged_quantile([point], q) for q in (0.5, 0.95, 0.99)] == [0.1, 0.2, 0.3]
    assert merged_quantile([point, dict(point)], 0.95) == pytest.approx(0.2)


def test_frame_fits_80x24_with_values_and_colours(overview):
    lines = render(overview)
    text = "\n".join(t for t, _ in lines)
    assert len(lines) <= 24 and max(len(t) for t, _ in lines) <= 80
    for expected in ("trading-bot", "93.2%", "45.2%", "88.0%", "$12.35", "85.0%", "create_order", "6.7%",
                     "375ms", "ETH/USDT", "High CPU usage", "CRITICAL", "WARNING", "Hit rate 85.0%"):
        assert expected in text, expected
    assert colour_of(lines, "93.2%") == "red"
    assert colour_of(lines, "375ms") == "yellow"   # create_order's p95: over the trading rule's 150 ms, under 500
    assert colour_of(lines, "6.7%") == "red"       # and its error rate over 5 %
    assert colour_of(lines, " 50ms") == "green"    # retrieve's p95
    assert colour_of(lines, "45.2%") == "green"
    assert colour_of(lines, "88.0%") == "yellow"
    assert colour_of(lines, "CRITICAL") == "red"
    assert colour_of(lines, "WARNING") == "yellow"
    assert colour_of(lines, "ETH/USDT") == "red"
    assert colour_of(lines, "CRIT") == "red"      # the header's overall state


def test_wider_terminal_gets_bars_and_counts(overview):
    lines = render(overview, width=140, height=40)
    text = "\n".join(t for t, _ in lines)
    assert "CALLS" in text and "▮" in text
    assert max(len(t) for t, _ in lines) <= 140


def test_many_operations_are_cut_to_the_screen_keeping_the_alerts(tmp_path):
    directory = write_snapshot_dir(tmp_path / "snap", metrics=known_metrics(extra_operations=30))
    lines = render(build_overview(read_snapshot_dir(directory), now=NOW))
    text = "\n".join(t for t, _ in lines)
    assert len(lines) <= 24
    assert "more" in text and "High CPU usage" in text
    assert text.index("create_order") < text.index("GET /items")   # the failing operation first


def test_rate_from_the_change_of_count_between_two_readings(tmp_path):
    first = known_metrics(timestamp=NOW)
    second = known_metrics(timestamp=NOW + 10)
    retrieve = next(p for p in second["histograms"]["otel_monitoring.operation.duration"]
                    if p["attributes"]["operation"] == "retrieve")
    retrieve["count"] = 50 + 35
    write_snapshot_dir(tmp_path / "a", metrics=first)
    write_snapshot_dir(tmp_path / "b", metrics=second)
    overview = build_overview(read_snapshot_dir(str(tmp_path / "b")), previous=read_snapshot_dir(str(tmp_path / "a")))
    row = next(r for r in overview.red if r.operation == "retrieve")
    assert row.rate_per_s == pytest.approx(3.5)


def test_once_prints_one_frame_and_reports_a_missing_snapshot(tmp_path):
    directory = write_snapshot_dir(tmp_path / "snap")
    done = subprocess.run([*CLI, "top", "--once", "--dir", directory], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "High CPU usage" in done.stdout and "93.2%" in done.stdout
    assert "\x1b[" not in done.stdout                    # into a pipe: plain text for scripts
    # A directory the application has not written to yet: the frame says so.
    (tmp_path / "empty").mkdir()
    empty = subprocess.run([*CLI, "top", "--once", "--dir", str(tmp_path / "empty")], capture_output=True, text=True,
                           timeout=60)
    assert empty.returncode == 1 and "no metrics_live.json yet" in empty.stdout
    # No such directory: named with the fix, like `alerts list`, and no frame of nothing.
    missing = subprocess.run([*CLI, "top", "--once", "--dir", str(tmp_path / "none")], capture_output=True, text=True,
                             timeout=60)
    assert missing.returncode == 2 and missing.stdout == "", missing.stdout
    assert f"otel-monitoring top: {tmp_path / 'none'} is not a directory" in missing.stderr
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "metrics_live.json").write_text("{\"schema\": 1, \"gauges\": {")
    done = subprocess.run([*CLI, "top", "--once", "--dir", str(broken)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "cannot read" in done.stdout and "Traceback" not in done.stderr




def test_views_without_a_snapshot_directory_name_it_and_the_fix_like_alerts_list(tmp_path):
    """Nothing names a directory and neither . nor ./otel-data holds one: every view of a snapshot
    directory exits 2 with the fix, instead of showing an empty frame or report as if all were idle."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    commands = {"top": ["top", "--once"], "report": ["report", "--html", str(tmp_path / "r.html")],
                "alerts": ["alerts", "list"]}
    for name, argv in commands.items():
        done = subprocess.run([*CLI, *argv], capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
        assert done.returncode == 2, (name, done.stdout, done.stderr)
        assert done.stdout == "", (name, done.stdout)
        assert done.stderr.strip() == (f"otel-monitoring {name}: no snapshot directory (neither . nor the file "
                                       "directory holds one); pass --dir or set OTEL_MONITORING_SNAPSHOT_DIR"), done.stderr
    assert not (tmp_path / "r.html").exists()


def require_tool(name: str) -> str:
    """The program's path; skipped when missing, but a failure under CI, which must run the test."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not installed (scripts/install-test-tools.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


def test_live_mode_in_a_real_terminal_follows_the_snapshots(tmp_path):
    require_tool("tmux")
    directory = write_snapshot_dir(tmp_path / "snap", metrics=known_metrics(timestamp=time.time()))
    session = f"otel-top-{os.getpid()}"
    socket = str(tmp_path / "tmux.sock")
    env = {**os.environ, "TERM": "xterm-256color"}
    tmux = ["tmux", "-S", socket]
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "80", "-y", "24",
                    f"{sys.executable} -m otel_monitoring.cli top --dir {directory} --interval 0.5"], check=True, env=env)
    try:
        def capture(predicate, what):
            deadline = time.monotonic() + 30
            screen = ""
            while time.monotonic() < deadline:
                screen = subprocess.run([*tmux, "capture-pane", "-p", "-e", "-t", session], capture_output=True,
                                        text=True).stdout
                if predicate(screen):
                    return screen
                time.sleep(0.2)
            raise AssertionError(f"the screen never showed {what}:\n{screen}")

        screen = capture(lambda s: "93.2%" in s, "the first frame")
        plain = subprocess.run([*tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True).stdout
        assert max(len(line) for line in plain.splitlines()) <= 80
        assert "\x1b[31m93.2%" in screen                 # critical CPU in red on the real terminal
        # The writer moves on: CPU calms down and the CPU alert resolves; the next refreshes show it.
        write_snapshot_dir(directory, metrics=known_metrics(timestamp=time.time(), cpu_idle=(0.6, 0.6)),
                           alerts=[dict(KNOWN_ALERTS[0], state="resolved", severity="critical")])
        screen = capture(lambda s: "40.0%" in s and "resolved" in s, "the new values")
        assert "\x1b[32m40.0%" in screen
        subprocess.run([*tmux, "send-keys", "-t", session, "q"], check=True)
        capture_done = time.monotonic() + 30
        while time.monotonic() < capture_done:
            if subprocess.run([*tmux, "has-session", "-t", session], capture_output=True).returncode != 0:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("q did not quit top")
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


def test_live_mode_into_a_pipe_prints_whole_frames(tmp_path):
    """Without a terminal (logged, piped) each refresh is one complete frame, not screen codes."""
    directory = write_snapshot_dir(tmp_path / "snap")
    process = subprocess.Popen([*CLI, "top", "--dir", directory, "--interval", "0.2"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        frames = 0
        lines = []
        while frames < 2:
            line = process.stdout.readline()
            assert line, process.stderr.read()
            lines.append(line)
            frames += line.startswith("otel-monitoring trading-bot")
    finally:
        process.kill()
        process.wait()
    text = "".join(lines)
    assert "\x1b[" not in text and text.count("High CPU usage") >= 1 and "create_order" in text


def test_old_http_histograms_in_ms_are_shown_in_seconds_and_never_beside_the_stable_one():
    """The contrib instrumentations' old http.server.duration is in ms: read and shown in seconds.
    With both conventions emitted (OTEL_SEMCONV_STABILITY_OPT_IN=http/dup) the requests show once."""
    from otel_monitoring.views.snapshot import Snapshot

    route = {"http.request.method": "GET", "http.route": "/quotes"}
    old = Snapshot(timestamp_unix=NOW, histograms={"http.server.duration": [
        {"attributes": route, "count": 40, "p50": 120.0, "p95": 213.0, "p99": 250.0, "min": 100.0, "max": 260.0}]},
        units={"http.server.duration": "ms"})
    (row,) = build_overview(old, now=NOW).red
    assert (row.component, row.operation, row.count) == ("http.server", "GET /quotes", 40)
    assert (row.p50, row.p95, row.p99) == (pytest.approx(0.120), pytest.approx(0.213), pytest.approx(0.250))
    both = Snapshot(timestamp_unix=NOW, histograms={**old.histograms, "http.server.request.duration": [
        {"attributes": route, "count": 40, "p50": 0.12, "p95": 0.213, "p99": 0.25, "min": 0.1, "max": 0.26}]},
        units={"http.server.duration": "ms", "http.server.request.duration": "s"})
    (row,) = build_overview(both, now=NOW).red
    assert row.count == 40 and row.p95 == pytest.approx(0.213)


def test_genai_rows_are_not_shown_beside_the_red_rows_of_the_same_calls():
    from otel_monitoring.views.snapshot import Snapshot

    red = {"domain": "rag", "component": "langchain", "operation": "chat", "outcome": "success"}
    genai = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o"}
    snapshot = Snapshot(timestamp_unix=NOW, histograms={
        "otel_monitoring.operation.duration": [{"attributes": red, "count": 20, "p50": 1.0, "p95": 2.0, "p99": 2.5}],
        "gen_ai.client.operation.duration": [{"attributes": genai, "count": 20, "p50": 1.1, "p95": 2.1, "p99": 2.6}],
        "trading.market_data.age": [{"attributes": {}, "count": 3, "p50": 0.05, "p95": 0.06, "p99": 0.06}]},
        units={"otel_monitoring.operation.duration": "s", "gen_ai.client.operation.duration": "s",
               "trading.market_data.age": "s"})
    rows = build_overview(snapshot, now=NOW).red
    assert [(r.component, r.operation, r.count) for r in rows] == [("langchain", "chat", 20)]
    # a model call is held to the model thresholds (5 s / 10 s), not the milliseconds of the rest
    assert rows[0].latency_state == State.OK


P95_WORKLOAD = """
import sys, time
import otel_monitoring
otel_monitoring.configure(service_name="p95", exporter="otlp_file", file_dir=sys.argv[1], snapshot_dir=sys.argv[1],
                          system_metrics=False, alert_rules="none", health_default_checks=False)

@otel_monitoring.traced("job", "step")
def step(seconds):
    time.sleep(seconds)

for seconds in [0.012] * 17 + [0.028, 0.031, 0.045]:
    step(seconds)
"""


def test_top_and_the_demo_summary_show_one_p95_the_buckets_estimate_in_the_true_p95s_bucket(tmp_path):
    """The demo summary printed an exact p95 from its spans (30.2 ms) where `top` showed the
    histogram's estimate (40 ms) for the same calls. Every view now shows the one estimate the
    snapshot holds: linear inside the bucket that holds the rank (as Prometheus' histogram_quantile),
    which is the bucket of the true p95 of the spans."""
    import bisect
    import math
    import re

    from otel_monitoring.commands.demo import operations_table
    from otel_monitoring.local.snapshot import bucket_quantile
    from otel_monitoring.names import DURATION_BUCKETS
    from otel_monitoring.views import formatting as fmt
    from support import clean_env, read_otlp_file, spans_from_requests

    data = tmp_path / "data"
    done = subprocess.run([sys.executable, "-c", P95_WORKLOAD, str(data)], capture_output=True, text=True,
                          timeout=120, env=clean_env())
    assert done.returncode == 0, done.stderr
    spans = [s for _r, _s, s in spans_from_requests(read_otlp_file(str(data / "traces.jsonl"), "traces"))
             if s.name == "job.step"]
    durations = sorted((s.end_time_unix_nano - s.start_time_unix_nano) / 1e9 for s in spans)
    assert len(durations) == 20
    counts = [0] * (len(DURATION_BUCKETS) + 1)
    for value in durations:
        counts[bisect.bisect_left(DURATION_BUCKETS, value)] += 1
    estimate = bucket_quantile(0.95, DURATION_BUCKETS, counts, durations[0], durations[-1])
    true_p95 = durations[math.ceil(0.95 * len(durations)) - 1]  # nearest rank: the 19th of 20
    assert bisect.bisect_left(DURATION_BUCKETS, estimate) == bisect.bisect_left(DURATION_BUCKETS, true_p95)

    top = subprocess.run([*CLI, "top", "--once", "--width", "200", "--dir", str(data)], capture_output=True, text=True,
                         timeout=60)
    assert top.returncode == 0, top.stderr
    top_row = next(line.split() for line in top.stdout.splitlines() if re.match(r"job\s+step\s", line))
    summary_row = next(line.split() for line in operations_table(read_snapshot_dir(str(data)))
                       if re.match(r"job\s+step\s", line))
    # component operation calls [rate] err% p50 p95 p99: the last three are the percentiles.
    assert top_row[2] == summary_row[2] == "20"
    assert top_row[-3:] == summary_row[-3:]
    assert summary_row[-2] == fmt.duration(estimate), (summary_row, estimate, true_p95)
