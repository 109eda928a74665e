"""The history store: what the snapshot reader and alert engine write, read back through the documented API."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from otel_monitoring.local.history import HISTORY_FILE, HistoryStore


def snapshot(when: float, cpu: float, calls: float, rate: float) -> dict:
    return {
        "schema": 1, "timestamp_unix": when,
        "counters": {"calls": [{"attributes": {"component": "api"}, "value": calls, "rate_per_s": rate},
                               {"attributes": {"component": "db"}, "value": 1.0, "rate_per_s": 0.0}]},
        "gauges": {"system.cpu.utilization": [{"attributes": {}, "value": cpu}]},
        "histograms": {"latency": [{"attributes": {}, "count": 3, "sum": 0.6, "min": 0.1, "max": 0.3,
                                    "p50": 0.2, "p95": 0.29, "p99": 0.3}]},
    }


def test_missing_file_reads_as_empty_and_is_not_created(tmp_path):
    store = HistoryStore(str(tmp_path))
    assert store.metric_names() == []
    assert store.series("calls") == []
    assert store.alert_events() == []
    assert not os.path.exists(tmp_path / HISTORY_FILE)


def test_series_fields_time_range_and_attribute_filter(tmp_path):
    writer = HistoryStore(str(tmp_path))
    for i in range(5):
        writer.record_snapshot(snapshot(1000.0 + 10 * i, cpu=0.1 * i, calls=10.0 * i, rate=float(i)))
    reader = HistoryStore(str(tmp_path))
    assert reader.metric_names() == ["calls", "latency", "system.cpu.utilization"]
    cpu = reader.series("system.cpu.utilization")
    assert [t for t, _, _ in cpu] == [1000.0, 1010.0, 1020.0, 1030.0, 1040.0]
    assert [v for _, _, v in cpu] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    api = reader.series("calls", field="rate_per_s", since=1010, until=1030, attributes={"component": "api"})
    assert [(t, a, v) for t, a, v in api] == [(1010.0, {"component": "api"}, 1.0), (1020.0, {"component": "api"}, 2.0),
                                             (1030.0, {"component": "api"}, 3.0)]
    assert len(reader.series("calls", since=1040)) == 2  # both components
    assert reader.series("latency", field="p95")[0][2] == pytest.approx(0.29)
    assert reader.series("system.cpu.utilization", field="p95") == []  # gauges have no percentiles
    with pytest.raises(ValueError, match="p90"):
        reader.series("latency", field="p90")


def test_alert_events_and_retention(tmp_path):
    store = HistoryStore(str(tmp_path), retention_s=100.0)
    store.record_alert_event(1000.0, "high_cpu", "high_cpu", "High CPU", "warning", "pending", 0.9)
    store.record_alert_event(1100.0, "high_cpu", "high_cpu", "High CPU", "warning", "firing", 0.95)
    store.record_alert_event(1150.0, "high_cpu", "high_cpu", "High CPU", "warning", "acknowledged", by="maria")
    store.record_snapshot(snapshot(1000.0, 0.5, 1, 0))
    store.record_snapshot(snapshot(1150.0, 0.6, 2, 0))
    events = HistoryStore(str(tmp_path)).alert_events()
    assert [e["event"] for e in events] == ["pending", "firing", "acknowledged"]
    assert events[1] == {"time": 1100.0, "alert_id": "high_cpu", "rule_id": "high_cpu", "name": "High CPU",
                         "severity": "warning", "event": "firing", "value": 0.95, "by": None,
                         "process": None}
    assert events[2]["by"] == "maria"
    assert [e["event"] for e in store.alert_events(since=1100)] == ["firing", "acknowledged"]
    store.prune(now=1150.0)
    assert [e["event"] for e in store.alert_events()] == ["firing", "acknowledged"]
    assert [t for t, _, _ in store.series("system.cpu.utilization")] == [1150.0]
    with pytest.raises(ValueError, match="fired"):
        store.record_alert_event(1.0, "a", "a", "A", "info", "fired")


def test_reader_in_another_process_while_writer_is_open(tmp_path):
    writer = HistoryStore(str(tmp_path))
    writer.record_snapshot(snapshot(1000.0, 0.5, 1, 0))
    code = ("import sys; from otel_monitoring.local.history import HistoryStore; "
            "print(len(HistoryStore(sys.argv[1]).series('calls')))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "2", out.stderr
    writer.record_snapshot(snapshot(1010.0, 0.5, 2, 0))
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "4", out.stderr


def test_rollup_keeps_the_last_day_whole_and_older_hours_as_one_row(tmp_path):
    """Two days of one-minute rows: the last day stays per minute, each older hour becomes one row at
    its middle with the hour's average value and its worst p95."""
    from otel_monitoring.local.history import ROLLUP_AFTER_S

    start = 1_700_000_000.0 // 3600 * 3600  # on an hour
    store = HistoryStore(str(tmp_path), retention_s=30 * 86400)
    minutes = 2 * 24 * 60
    for i in range(minutes):
        doc = snapshot(start + 60 * i, cpu=(i % 60) / 100, calls=float(i), rate=1.0)
        doc["histograms"]["latency"][0]["p95"] = 0.1 + (i % 60) / 1000
        doc["histograms"]["latency"][0]["count"] = i
        store.record_snapshot(doc)
    now = start + 60 * (minutes - 1)
    store.prune(now=now)
    rolled_before = (now - ROLLUP_AFTER_S) // 3600 * 3600
    cpu = HistoryStore(str(tmp_path)).series("system.cpu.utilization")
    old = [(t, v) for t, _, v in cpu if t < rolled_before]
    recent = [t for t, _, _ in cpu if t >= rolled_before]
    hours = int((rolled_before - start) // 3600)
    assert [t for t, _ in old] == [start + 3600 * h + 1800 for h in range(hours)]
    assert all(v == pytest.approx(sum(range(60)) / 60 / 100) for _, v in old)    # the hour's average
    assert recent == [start + 60 * i for i in range(minutes) if start + 60 * i >= rolled_before]
    p95 = [v for t, _, v in HistoryStore(str(tmp_path)).series("latency", field="p95") if t < rolled_before]
    assert p95 == pytest.approx([0.159] * hours)                                 # the hour's worst
    count = [v for t, _, v in HistoryStore(str(tmp_path)).series("latency", field="count") if t < rolled_before]
    assert count == [60.0 * h + 59 for h in range(hours)]                        # cumulative: the hour's last
    calls = [v for t, _, v in HistoryStore(str(tmp_path)).series("calls", attributes={"component": "api"})
             if t < rolled_before]
    assert calls == [60.0 * h + 59 for h in range(hours)]                        # a counter too, not its average
    increase = HistoryStore(str(tmp_path)).series("calls", attributes={"component": "api"})
    assert increase[-1][2] - calls[0] == minutes - 1 - 59                        # increase across the fold stays whole
    store.prune(now=now)  # folding again changes nothing
    assert HistoryStore(str(tmp_path)).series("system.cpu.utilization") == cpu
    # Retention applies to rolled-up rows too.
    store.prune(now=start + 30 * 86400 + 7200)
    assert HistoryStore(str(tmp_path)).series("system.cpu.utilization")[0][0] >= start + 7200


def process_snapshot(when: float, name: str, instance: str, orders: float, queue: float, p95: float) -> dict:
    return {"schema": 1, "timestamp_unix": when, "service": {"name": name, "instance_id": instance, "pid": 1},
            "counters": {"orders": [{"attributes": {}, "value": orders, "rate_per_s": 1.0}]},
            "gauges": {"queue.depth": [{"attributes": {}, "value": queue}],
                       "system.cpu.utilization": [{"attributes": {}, "value": queue / 100}]},
            "histograms": {"latency": [{"attributes": {}, "count": orders, "sum": orders, "p95": p95}]}}


def test_rows_of_several_processes_combine_into_the_directory_total(tmp_path):
    """Two writers (10 s history interval): counters and histogram counts add up and keep a stopped
    process' count; gauges add up over the live processes only; percentiles take the highest; a
    host gauge is the newest reading, not a sum."""
    store = HistoryStore(str(tmp_path))
    store.record_snapshot(process_snapshot(1000, "bot", "a", 10, 4, 0.2), interval_s=10)
    store.record_snapshot(process_snapshot(1005, "api", "b", 3, 1, 0.5), interval_s=10)
    store.record_snapshot(process_snapshot(1010, "bot", "a", 12, 6, 0.2), interval_s=10)  # the bot's last row
    store.record_snapshot(process_snapshot(1015, "api", "b", 5, 2, 0.4), interval_s=10)
    store.record_snapshot(process_snapshot(1060, "api", "b", 9, 3, 0.1), interval_s=10)   # bot stopped > 30 s ago
    reader = HistoryStore(str(tmp_path))
    assert [p["service"] for p in reader.processes()] == ["bot", "api"]
    assert [v for _t, _a, v in reader.series("orders")] == [10, 13, 15, 17, 21]
    assert [v for _t, _a, v in reader.series("latency", field="count")] == [10, 13, 15, 17, 21]
    assert [v for _t, _a, v in reader.series("queue.depth")] == [4, 5, 7, 8, 3]
    assert [v for _t, _a, v in reader.series("latency", field="p95")] == [0.2, 0.5, 0.5, 0.4, 0.1]
    assert [v for _t, _a, v in reader.series("system.cpu.utilization")] == [0.04, 0.01, 0.06, 0.02, 0.03]
    assert [v for _t, _a, v in reader.series("orders", field="rate_per_s")] == [1, 2, 2, 2, 1]
    # A window opening after the bot stopped still counts what the bot did.
    assert [v for _t, _a, v in reader.series("orders", since=1050)] == [21]
    assert [(t, k, v) for t, k, _a, v in reader.process_series("orders")] == [
        (1000, "a.1", 10), (1005, "b.1", 3), (1010, "a.1", 12), (1015, "b.1", 5), (1060, "b.1", 9)]


def test_a_file_of_the_earlier_schema_is_migrated_and_its_rows_kept(tmp_path):
    import sqlite3

    conn = sqlite3.connect(tmp_path / HISTORY_FILE)
    conn.executescript("""
        CREATE TABLE series (id INTEGER PRIMARY KEY, metric TEXT NOT NULL, attributes TEXT NOT NULL,
                             UNIQUE (metric, attributes));
        CREATE TABLE samples (time REAL NOT NULL, series_id INTEGER NOT NULL, value REAL, rate_per_s REAL,
                              count REAL, sum REAL, p50 REAL, p95 REAL, p99 REAL);
        CREATE TABLE alert_events (time REAL NOT NULL, alert_id TEXT NOT NULL, rule_id TEXT NOT NULL,
                                   name TEXT NOT NULL, severity TEXT NOT NULL, event TEXT NOT NULL, value REAL);
        INSERT INTO series VALUES (1, 'orders', '{}');
        INSERT INTO samples (time, series_id, value) VALUES (900, 1, 4);
        INSERT INTO alert_events VALUES (901, 'x', 'x', 'X', 'warning', 'firing', 1);
    """)
    conn.commit()
    conn.close()
    assert [v for _t, _a, v in HistoryStore(str(tmp_path)).series("orders")] == [4]  # read as it is
    writer = HistoryStore(str(tmp_path))
    writer.record_snapshot(process_snapshot(1000, "bot", "a", 10, 4, 0.2), interval_s=10)
    reader = HistoryStore(str(tmp_path))
    assert [(t, k, v) for t, k, _a, v in reader.process_series("orders")] == [(900, "", 4), (1000, "a.1", 10)]
    assert [v for _t, _a, v in reader.series("orders")] == [4, 14]
    assert reader.alert_events()[0]["process"] is None
