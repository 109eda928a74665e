"""System meters and host health, read back through the SDK's in-memory metric reader and compared
with the operating system's own numbers (os.statvfs, os.getloadavg, psutil)."""

from __future__ import annotations

import os
import time

import psutil
import pytest
from meters_support import read_metrics

from otel_monitoring.meters.host_health import HostHealth, evaluate, resource_score
from otel_monitoring.thresholds import health_state
from otel_monitoring.meters.system import DEFAULT_CONTRIB_METRICS, FilesystemList, SystemMeters, contrib_config


@pytest.fixture
def system(telemetry):
    meters = SystemMeters(telemetry.meter_provider, mountpoints=["/"])
    meters.start()
    yield meters
    meters.shutdown()


def test_filesystem_usage_matches_statvfs(telemetry, system):
    metrics = read_metrics(telemetry.metric_reader)
    stat = os.statvfs("/")
    usage, utilization = metrics["system.filesystem.usage"], metrics["system.filesystem.utilization"]
    assert (usage.unit, utilization.unit) == ("By", "1")
    root = {"system.filesystem.mountpoint": "/"}
    used = usage.value(**{"system__filesystem__state": "used"}, system__filesystem__mountpoint="/")
    free = usage.value(system__filesystem__state="free", system__filesystem__mountpoint="/")
    reserved = usage.value(system__filesystem__state="reserved", system__filesystem__mountpoint="/")
    # The three states add up to the filesystem's size exactly; used/free move a little with other writers.
    assert used + free + reserved == stat.f_blocks * stat.f_frsize
    assert reserved == (stat.f_bfree - stat.f_bavail) * stat.f_frsize
    assert abs(free - stat.f_bavail * stat.f_frsize) < 64 * 1024 * 1024
    assert abs(used - (stat.f_blocks - stat.f_bfree) * stat.f_frsize) < 64 * 1024 * 1024
    point = utilization.by(**{k.replace(".", "__"): v for k, v in root.items()})[0]
    assert point.value == pytest.approx(used / (used + free), abs=1e-3)
    assert point.attributes["system.filesystem.mode"] in ("rw", "ro")
    assert set(point.attributes) >= {"system.filesystem.mountpoint", "system.filesystem.mode"}


def test_load_uptime_and_process_metrics(telemetry, system):
    metrics = read_metrics(telemetry.metric_reader)
    load = os.getloadavg()
    for index, name in enumerate(("1m", "5m", "15m")):
        metric = metrics[f"system.cpu.load_average.{name}"]
        assert metric.unit == "{thread}"
        assert metric.points[0].value == pytest.approx(load[index], abs=1.0)  # moves every 5 s under load
    assert metrics["system.uptime"].unit == "s"
    assert metrics["system.uptime"].points[0].value == pytest.approx(time.time() - psutil.boot_time(), abs=5)
    process_uptime = metrics["process.uptime"].points[0].value
    assert 0 < process_uptime == pytest.approx(time.time() - psutil.Process().create_time(), abs=5)
    count = metrics["system.process.count"]
    assert count.unit == "{process}"
    assert count.points[0].value == pytest.approx(len(psutil.pids()), abs=50)  # other processes come and go


def test_contrib_metrics_reused_without_deprecated_or_costly_ones(telemetry, system):
    names = set(read_metrics(telemetry.metric_reader))
    assert {"system.cpu.time", "system.cpu.utilization", "system.memory.utilization", "system.swap.usage",
            "system.disk.io", "system.network.io", "process.cpu.time", "process.cpu.utilization",
            "process.memory.usage", "process.thread.count", "process.open_file_descriptor.count"} <= names
    assert "system.network.connections" not in names and "system.disk.operations" not in names
    assert not [n for n in names if n.startswith("process.runtime.")]
    assert "system.thread_count" not in names


def test_virtual_block_devices_are_left_out_of_disk_io(telemetry, system):
    devices = {p.attributes["device"] for p in read_metrics(telemetry.metric_reader)["system.disk.io"].points}
    assert devices and not [d for d in devices if d.startswith(("loop", "ram", "zram"))]


def test_extras_are_opt_in_and_the_exclusion_variable_is_honoured():
    assert sorted(contrib_config(environ={})) == sorted(DEFAULT_CONTRIB_METRICS)
    extra = contrib_config(["system.network.connections", "cpython.gc.*", "process.runtime.*"], environ={})
    assert {"system.network.connections", "cpython.gc.collections"} <= set(extra)
    assert not [n for n in extra if n.startswith("process.runtime.")]  # deprecated: never
    config = contrib_config(environ={"OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS": "system.disk.*, process.cpu.*"})
    assert not [n for n in config if n.startswith(("system.disk.", "process.cpu."))]
    assert "system.memory.usage" in config


def test_explicit_mountpoints_skip_missing_directories(tmp_path):
    listed = FilesystemList(["/", str(tmp_path / "missing")]).get()
    assert [fs.mountpoint for fs in listed] == ["/"]
    assert listed[0].device  # found in the mount table


# --- host health: the score bands and their edges ---

@pytest.mark.parametrize("percent, expected", [
    (0.0, 100.0), (35.0, 95.0), (69.999, 90.0001), (70.0, 89.0), (80.0, 69.5), (89.999, 50.00195),
    (90.0, 49.0), (95.0, 24.5), (100.0, 0.0),
])
def test_resource_score_bands(percent, expected):
    assert resource_score(percent, 70.0, 90.0) == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("score, state", [
    (100, "EXCELLENT"), (90, "EXCELLENT"), (89.99, "GOOD"), (75, "GOOD"), (74.99, "WARNING"),
    (50, "WARNING"), (49.99, "CRITICAL"), (0, "CRITICAL"),
])
def test_classify_edges(score, state):
    assert health_state(score) == state


def test_host_state_follows_the_worst_resource_at_the_thresholds():
    thresholds = {"cpu": (70.0, 90.0), "memory": (80.0, 95.0), "disk": (85.0, 95.0)}
    assert evaluate({"cpu": 0.6999, "memory": 0.7999, "disk": 0.8499}, thresholds).state == "EXCELLENT"
    assert evaluate({"cpu": 0.70, "memory": 0.10, "disk": 0.10}, thresholds).state == "GOOD"
    assert evaluate({"cpu": 0.10, "memory": 0.90, "disk": 0.10}, thresholds).state == "WARNING"
    reading = evaluate({"cpu": 0.10, "memory": 0.10, "disk": 0.95}, thresholds)
    assert (reading.state, reading.score) == ("CRITICAL", 49.0)


def test_host_health_metrics_report_one_current_state(telemetry):
    health = HostHealth(filesystems=FilesystemList(["/"]))
    health.observe(telemetry.meter_provider)
    metrics = read_metrics(telemetry.metric_reader)
    score = metrics["otel_monitoring.host.health.score"]
    assert score.unit == "{score}" and 0 <= score.points[0].value <= 100
    status = metrics["otel_monitoring.host.health.status"]
    states = {p.attributes["otel_monitoring.host.health.state"]: p.value for p in status.points}
    assert sorted(states) == sorted(["EXCELLENT", "GOOD", "WARNING", "CRITICAL"])
    assert sum(states.values()) == 1
    assert states[health_state(score.points[0].value)] == 1
    utilization = metrics["otel_monitoring.host.resource.utilization"]
    by_resource = {p.attributes["otel_monitoring.host.resource"]: p.value for p in utilization.points}
    assert set(by_resource) == {"cpu", "memory", "disk"}
    memory = psutil.virtual_memory()
    assert by_resource["memory"] == pytest.approx(1 - memory.available / memory.total, abs=0.05)
    stat = os.statvfs("/")
    used, free = (stat.f_blocks - stat.f_bfree) * stat.f_frsize, stat.f_bavail * stat.f_frsize
    assert by_resource["disk"] == pytest.approx(used / (used + free), abs=1e-3)
