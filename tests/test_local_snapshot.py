"""Live snapshots: metrics_live.json content (counters, rates, gauges, histogram percentiles against the
true percentiles), atomic replacement under a polling reader, and the local mode through configure()."""

from __future__ import annotations

import json
import math
import os
import random
import threading

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from support import reset_otel_globals

from otel_monitoring.local.history import HistoryStore
from otel_monitoring.local.snapshot import LIVE_FILE, SnapshotExporter, bucket_quantile, make_snapshot_reader

BOUNDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Clock:
    def __init__(self, now=1_800_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def pipeline(tmp_path):
    clock = Clock()
    exporter = SnapshotExporter(str(tmp_path), interval_s=3600, history=HistoryStore(str(tmp_path)),
                                history_interval_s=0, clock=clock)
    reader = make_snapshot_reader(exporter)  # collects only when flushed in these tests
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    yield provider.get_meter("test"), reader, exporter, clock, tmp_path
    provider.shutdown()


def read_live(directory) -> dict:
    with open(os.path.join(directory, LIVE_FILE), encoding="utf-8") as handle:
        return json.load(handle)


def true_quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]  # nearest rank


def bucket_of(value: float) -> tuple[float, float]:
    lower = 0.0
    for bound in BOUNDS:
        if value <= bound:
            return lower, bound
        lower = bound
    return lower, math.inf


def test_histogram_percentiles_are_within_the_true_percentiles_bucket(pipeline):
    meter, reader, exporter, clock, directory = pipeline
    latency = meter.create_histogram("otel_monitoring.operation.duration", unit="s",
                                     explicit_bucket_boundaries_advisory=list(BOUNDS))
    rng = random.Random(7)
    values = {"fast": [rng.lognormvariate(-4.0, 0.8) for _ in range(5000)],
              "slow": [rng.lognormvariate(-0.5, 1.0) for _ in range(3000)]}
    for component, samples in values.items():
        for value in samples:
            latency.record(value, {"component": component})
    reader.force_flush()
    live = read_live(directory)
    assert live["units"]["otel_monitoring.operation.duration"] == "s"
    entries = {e["attributes"]["component"]: e for e in live["histograms"]["otel_monitoring.operation.duration"]}
    for component, samples in values.items():
        entry = entries[component]
        assert entry["count"] == len(samples)
        assert entry["sum"] == pytest.approx(sum(samples))
        assert entry["min"] == pytest.approx(min(samples)) and entry["max"] == pytest.approx(max(samples))
        for label, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
            truth = true_quantile(samples, q)
            lower, upper = bucket_of(truth)
            upper = min(upper, max(samples))  # the open last bucket is closed by the max
            assert lower <= entry[label] <= upper, (component, label, truth, entry[label])
        assert entry["p50"] <= entry["p95"] <= entry["p99"] <= entry["max"]


def test_percentiles_cover_the_recent_window_and_since_start_stays_available(tmp_path):
    """One early spike must not keep p95 high for hours: p50/p95/p99 are of the last
    percentile_window_s (bucket differences), since_start keeps the whole run."""
    clock = Clock()
    exporter = SnapshotExporter(str(tmp_path), interval_s=3600, clock=clock, percentile_window_s=300)
    reader = make_snapshot_reader(exporter)
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    latency = provider.get_meter("test").create_histogram("otel_monitoring.operation.duration", unit="s",
                                                          explicit_bucket_boundaries_advisory=list(BOUNDS))
    try:
        for _ in range(50):
            latency.record(2.0, {"component": "api"})     # the start-up spike
        reader.force_flush()
        first = read_live(tmp_path)["histograms"]["otel_monitoring.operation.duration"][0]
        assert first["window_count"] == 50 and bucket_of(first["p95"]) == bucket_of(2.0)
        clock.now += 200
        reader.force_flush()   # a collection inside the window: nothing new
        clock.now += 200       # 400 s after the spike: it left the 300 s window
        for _ in range(100):
            latency.record(0.02, {"component": "api"})
        reader.force_flush()
        live = read_live(tmp_path)
        assert live["percentile_window_s"] == 300
        (entry,) = live["histograms"]["otel_monitoring.operation.duration"]
        assert entry["count"] == 150 and entry["window_count"] == 100
        assert bucket_of(entry["p95"]) == bucket_of(0.02) and bucket_of(entry["p99"]) == bucket_of(0.02)
        # since start, 50 of 150 calls took 2 s: the p95 is in the 2 s bucket
        assert bucket_of(entry["since_start"]["p95"]) == bucket_of(2.0)
        assert bucket_of(entry["since_start"]["p50"]) == bucket_of(0.02)
        # the buckets themselves are in the file: each call counted in its own bucket
        assert entry["bounds"] == list(BOUNDS)
        assert entry["counts"][BOUNDS.index(0.025)] == 100 and entry["counts"][BOUNDS.index(2.5)] == 50
        # views read the window by default, the whole run when asked
        from otel_monitoring.views.snapshot import read_snapshot_dir

        assert read_snapshot_dir(str(tmp_path)).histograms["otel_monitoring.operation.duration"][0]["p95"] == entry["p95"]
        since = read_snapshot_dir(str(tmp_path), since_start=True).histograms["otel_monitoring.operation.duration"][0]
        assert since["p95"] == entry["since_start"]["p95"]
    finally:
        provider.shutdown()


def test_bucket_quantile_edges():
    assert bucket_quantile(0.5, BOUNDS, [0] * 11) is None
    # everything in one bucket: interpolated inside it, clamped to the observed min and max
    counts = [0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0]
    assert bucket_quantile(0.5, BOUNDS, counts, 0.03, 0.04) == pytest.approx(0.035)
    assert bucket_quantile(0.99, BOUNDS, counts, 0.03, 0.04) <= 0.04
    # the overflow bucket is closed by the max
    assert bucket_quantile(0.99, BOUNDS, [0] * 10 + [4], 6.0, 9.0) == pytest.approx(6.0 + 3.0 * 0.99)


def test_counters_rates_gauges_and_history(pipeline):
    meter, reader, exporter, clock, directory = pipeline
    calls = meter.create_counter("otel_monitoring.operation.calls", unit="{call}")
    inflight = meter.create_up_down_counter("app.inflight")
    meter.create_observable_gauge("system.cpu.utilization", [lambda options: [_obs(0.42, {"cpu": "0"})]], unit="1")
    calls.add(10, {"component": "api"})
    inflight.add(3)
    reader.force_flush()
    first = read_live(directory)
    assert first["counters"]["otel_monitoring.operation.calls"] == [
        {"attributes": {"component": "api"}, "value": 10.0, "rate_per_s": 0.0}]
    assert first["gauges"]["app.inflight"][0]["value"] == 3.0
    assert first["gauges"]["system.cpu.utilization"] == [{"attributes": {"cpu": "0"}, "value": 0.42}]
    assert first["timestamp_unix"] == clock.now and first["timestamp"].endswith("Z") and first["schema"] == 1
    clock.now += 10
    calls.add(20, {"component": "api"})
    inflight.add(-1)
    reader.force_flush()
    second = read_live(directory)
    assert second["counters"]["otel_monitoring.operation.calls"][0]["rate_per_s"] == pytest.approx(2.0)
    assert second["gauges"]["app.inflight"][0]["value"] == 2.0
    history = HistoryStore(str(directory))
    assert [v for _, _, v in history.series("otel_monitoring.operation.calls", "rate_per_s")] == [0.0, 2.0]
    assert "system.cpu.utilization" in history.metric_names()


def _obs(value, attributes):
    from opentelemetry.metrics import Observation

    return Observation(value, attributes)


def test_a_polling_reader_never_sees_a_partial_file(tmp_path):
    """A writer replaces large snapshots as fast as it can while a reader parses them in a loop."""
    from otel_monitoring.local.snapshot import Point

    exporter = SnapshotExporter(str(tmp_path), interval_s=0.5)
    points = [Point(f"metric.{i}", "histogram", "s", {"component": f"c{j}"}, count=3, sum=0.3, min=0.05, max=0.2,
                    bounds=BOUNDS, counts=(0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0)) for i in range(40) for j in range(10)]
    exporter.process(points, 1.0)
    stop = threading.Event()
    errors: list[str] = []
    versions: set[float] = set()

    def poll():
        while not stop.is_set():
            try:
                with open(tmp_path / LIVE_FILE, encoding="utf-8") as handle:
                    versions.add(json.load(handle)["timestamp_unix"])
            except ValueError as error:
                errors.append(str(error))

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for i in range(200):
            exporter.process(points, 2.0 + i)
    finally:
        stop.set()
        reader.join()
    assert errors == []
    assert len(versions) > 1  # the reader did see the file change under it
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


class FilePoller:
    """Parses the given files in a loop on a thread until stopped, collecting any decoding error."""

    def __init__(self, *paths):
        self.paths, self.errors, self.reads = paths, [], 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        while not self._stop.is_set():
            for path in self.paths:
                try:
                    with open(path, encoding="utf-8") as handle:
                        json.load(handle)
                    self.reads += 1
                except FileNotFoundError:
                    pass
                except ValueError as error:
                    self.errors.append(f"{path}: {error}")

    def stop(self):
        self._stop.set()
        self._thread.join()


def test_local_mode_through_configure(tmp_path):
    """configure(snapshot_dir=...) runs the whole local mode next to the normal exporters: snapshots,
    rules from a file, alerts.json, history, a notification to a callback, and a last snapshot at shutdown."""
    import otel_monitoring
    from otel_monitoring.local import alerts

    rules = tmp_path / "rules.yaml"
    rules.write_text("""
metrics:
  app.queue.depth: {type: gauge, unit: "{item}"}
rules:
  - id: deep_queue
    name: Deep queue
    expr: {metric: app.queue.depth}
    op: ">"
    threshold: 100
    severity: critical
    annotations: {summary: "queue at {{ $value }}"}
  - id: broken
    expr: {metric: app.queue.depth}
    op: "=>"
    threshold: 1
    severity: critical
""")
    received = []
    done = threading.Event()

    def on_alert(event):
        received.append(event)
        done.set()

    alerts.add_alert_callback(on_alert, min_severity="critical")
    depth = {"value": 5}
    snapshots = tmp_path / "snap"
    poller = FilePoller(snapshots / LIVE_FILE, snapshots / "alerts.json")
    reset_otel_globals()
    try:
        # The periodic reader writes every 0.5 s in the background; flushes add collections on demand.
        monitoring = otel_monitoring.configure(
            service_name="queue-worker", exporter="otlp_file", file_dir=str(tmp_path / "otlp"),
            snapshot_dir=str(snapshots), snapshot_interval=0.5,
            alert_rules=str(rules), system_metrics=False, instrument=False)
        meter = monitoring.meter("app")
        meter.create_observable_gauge("app.queue.depth", [lambda o: [_obs(depth["value"], {})]], unit="{item}")
        monitoring.force_flush()
        live = read_live(snapshots)
        assert live["service"]["name"] == "queue-worker"
        assert live["gauges"]["app.queue.depth"][0]["value"] == 5
        assert json.loads((snapshots / "alerts.json").read_text())["alerts"] == []
        depth["value"] = 250
        monitoring.force_flush()
        listed = json.loads((snapshots / "alerts.json").read_text())["alerts"]
        assert [(a["id"], a["state"], a["value"]) for a in listed] == [("deep_queue", "firing", 250)]
        assert listed[0]["annotations"] == {"summary": "queue at 250"}
        assert otel_monitoring.add_alert_callback is alerts.add_alert_callback
        assert otel_monitoring.acknowledge_alert is alerts.acknowledge and otel_monitoring.silence_alert is alerts.silence
        assert done.wait(20)
        assert received[0].kind == "firing" and received[0].alert["id"] == "deep_queue"
        assert [a["id"] for a in alerts.active_alerts()] == ["deep_queue"]
        summary = alerts.demo_summary(monitoring)
        assert summary[0].startswith("Alerts (1 rules evaluated every 0.5s")
        assert summary[1].split() == ["firing", "critical", "deep_queue", "value", "250", "(threshold", "100)"]
        assert alerts.acknowledge("deep_queue") is True
        depth["value"] = 1
        monitoring.shutdown()  # the last collection resolves the alert and writes both files
    finally:
        alerts.remove_alert_callback(on_alert)
        reset_otel_globals()
        poller.stop()
    assert poller.errors == [] and poller.reads > 0
    assert read_live(snapshots)["gauges"]["app.queue.depth"][0]["value"] == 1
    assert "app.queue.depth" in (tmp_path / "otlp" / "metrics.jsonl").read_text()  # alongside the normal export
    # resolved (listed for one more interval, so possibly already gone)
    assert [a["state"] for a in json.loads((snapshots / "alerts.json").read_text())["alerts"]] in ([], ["resolved"])
    events = [(e["alert_id"], e["event"]) for e in HistoryStore(str(snapshots)).alert_events()]
    assert events == [("deep_queue", "pending"), ("deep_queue", "firing"), ("deep_queue", "acknowledged"),
                      ("deep_queue", "resolved")]
    assert alerts.active_alerts() == []


def test_bad_rules_are_logged_naming_the_rule_and_field(tmp_path, caplog):
    from otel_monitoring.config import load_settings
    from otel_monitoring.local import LocalComponent

    rules = tmp_path / "rules.yaml"
    rules.write_text("""
metrics:
  cpu: {type: gauge, unit: "1"}
rules:
  - {id: good, expr: {metric: cpu}, op: ">", threshold: 0.9, severity: warning}
  - {id: typo, expr: {metric: cpu}, op: ">", threshold: 0.9, severity: severe}
""")
    component = LocalComponent(load_settings({"snapshot_dir": str(tmp_path / "s"), "alert_rules": str(rules)}, {}))
    readers = component.metric_readers()
    try:
        assert [r.id for r in component.engine.rules] == ["good"]
        assert "rule 'typo', field 'severity': 'severe' is not one of info, warning, critical, emergency" in caplog.text
    finally:
        for reader in readers:
            reader.shutdown()


def test_no_snapshot_dir_means_no_reader_and_no_files(tmp_path, monkeypatch):
    from otel_monitoring.config import load_settings
    from otel_monitoring.local import LocalComponent

    monkeypatch.chdir(tmp_path)
    component = LocalComponent(load_settings({}, {}))
    assert component.metric_readers() == []
    assert os.listdir(tmp_path) == []


def test_budget_events_fire_the_budget_rules_at_once(tmp_path):
    """A budget crossing 80 % / 100 % (otel_monitoring.meters.budgets) fires the default rules over the
    utilization gauge without waiting for a collection; a budget no rule covers gets a 'budget' alert."""
    from decimal import Decimal

    budgets = pytest.importorskip("otel_monitoring.meters.budgets")
    from otel_monitoring.config import load_settings
    from otel_monitoring.local import LocalComponent
    from otel_monitoring.meters.settings import BudgetSpec

    component = LocalComponent(load_settings({"snapshot_dir": str(tmp_path)}, {}))
    provider = MeterProvider(metric_readers=component.metric_readers(), shutdown_on_exit=False)
    component._listen_to_budgets()
    try:
        tracker = budgets.BudgetTracker([BudgetSpec("daily", 10.0), BudgetSpec("monthly", 100.0, cost_type="compute")])
        tracker.add(Decimal("8.5"), "api_call", "llm")
        firing = {a["id"]: a for a in component.engine.alerts()}
        assert set(firing) == {"daily_cost_near_budget:daily:total"}
        assert firing["daily_cost_near_budget:daily:total"]["state"] == "firing"
        assert firing["daily_cost_near_budget:daily:total"]["value"] == pytest.approx(0.85)
        tracker.add(Decimal("2"), "api_call", "llm")
        firing = {a["id"]: a for a in component.engine.alerts()}
        assert firing["daily_cost_over_budget:daily:total"]["severity"] == "critical"
        tracker.add(Decimal("85"), "compute", "vm")
        monthly = {a["id"]: a for a in component.engine.alerts()}["budget:monthly:type.compute"]
        assert monthly["state"] == "firing" and monthly["severity"] == "warning"
        tracker.add(Decimal("15"), "compute", "vm")
        monthly = {a["id"]: a for a in component.engine.alerts()}["budget:monthly:type.compute"]
        assert monthly["state"] == "firing" and monthly["severity"] == "critical"
        assert "100.00 of 100.00 USD" in monthly["annotations"]["summary"]
    finally:
        component.shutdown()
        provider.shutdown()
    assert component._budget_listener not in budgets._listeners


def test_environment_only_under_opentelemetry_instrument(tmp_path):
    """No code change: the variables turn the local mode on, and the exit flush writes the last
    snapshot and alert state (the counter recorded just before exit is in it)."""
    import subprocess
    import sys

    from support import clean_env

    rules = tmp_path / "rules.yaml"
    rules.write_text("""
metrics:
  jobs.done: {type: counter, unit: "{job}"}
rules:
  - {id: many_jobs, name: Many jobs, expr: {metric: jobs.done}, op: ">=", threshold: 3, severity: info}
""")
    script = tmp_path / "app.py"
    script.write_text("from opentelemetry import metrics\n"
                      "metrics.get_meter('app').create_counter('jobs.done', unit='{job}').add(3)\n")
    snapshots = tmp_path / "snap"
    env = clean_env(OTEL_SERVICE_NAME="batch", OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none",
                    OTEL_LOGS_EXPORTER="none", OTEL_MONITORING_SNAPSHOT_DIR=str(snapshots),
                    OTEL_MONITORING_SNAPSHOT_INTERVAL="60", OTEL_MONITORING_ALERT_RULES=str(rules),
                    OTEL_MONITORING_SYSTEM_METRICS="false")
    instrument = os.path.join(os.path.dirname(sys.executable), "opentelemetry-instrument")
    result = subprocess.run([instrument, sys.executable, str(script)], env=env, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    live = read_live(snapshots)
    assert live["service"]["name"] == "batch" and live["interval_s"] == 60.0
    assert live["counters"]["jobs.done"][0]["value"] == 3.0
    assert [(a["id"], a["state"]) for a in json.loads((snapshots / "alerts.json").read_text())["alerts"]] == [
        ("many_jobs", "firing")]
    assert [(e["alert_id"], e["event"]) for e in HistoryStore(str(snapshots)).alert_events()] == [
        ("many_jobs", "pending"), ("many_jobs", "firing")]


def test_a_quantile_at_a_bucket_top_stays_in_that_bucket():
    """0.001 + (0.0025 - 0.001) is 0.0025000000000000005 in floats: the p50 of three calls in
    (0.001, 0.0025] and three above must read 0.0025, the bucket the true p50 is in, not one past it."""
    import bisect

    from otel_monitoring.local.snapshot import bucket_quantile

    bounds = [0.001, 0.0025, 0.005]
    value = bucket_quantile(0.5, bounds, [0, 3, 3, 0], None, 0.0049)
    assert value == 0.0025 and bisect.bisect_left(bounds, value) == 1


def test_a_collection_right_after_the_last_measures_its_rate_over_the_window_before():
    """The final snapshot at shutdown comes milliseconds after the last periodic one: its counter
    rates are measured from the collection before, not over those milliseconds (where they read 0,
    or impossibly high at the clock's granularity)."""
    from otel_monitoring.local.snapshot import Point, build_snapshot

    def point(value: float) -> Point:
        return Point(name="calls", kind="counter", attributes={}, value=value, unit="")

    previous: dict = {}
    rates = [build_snapshot([point(v)], t, 5.0, {}, previous)["counters"]["calls"][0]["rate_per_s"]
             for t, v in ((100.0, 0.0), (105.0, 50.0), (110.0, 100.0), (110.02, 100.0))]
    assert rates[:3] == [0.0, 10.0, 10.0]
    assert rates[3] == pytest.approx(50.0 / 5.02)  # from the collection at 105 s; over the last 20 ms it read 0
