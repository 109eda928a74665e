"""The system meters' points, built at collection time, are the points the SDK's observable path gave.

psutil is scripted at its own layer (the same reads for both paths, counters moving between
collections), and each path is read back through a real SDK metric reader, cumulative and delta:

- the contrib's default set against the real contrib ``SystemMetricsInstrumentor`` (the path
  before), metric by metric: scope, name, unit, description, kind, temporality, monotonicity,
  attribute sets, values, start and end times;
- everything (contrib set, our additions, host health) against the same callbacks registered as
  SDK observable instruments (the path a provider with Views gets);
- one collection reads each psutil source once, counted at psutil's platform layer.
"""

from __future__ import annotations

import os
import threading
import time
import types

import psutil
import pytest
from opentelemetry.sdk.metrics import (Counter, Histogram, MeterProvider, ObservableCounter, ObservableGauge,
                                       ObservableUpDownCounter, UpDownCounter)
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.metrics.view import DropAggregation, View

import opentelemetry.instrumentation.system_metrics as contrib
from otel_monitoring.meters import host_reads, system
from otel_monitoring.meters.host_health import CpuBusy, HostHealth
from otel_monitoring.meters.host_reads import ProcessCpuPercent, PsutilView
from otel_monitoring.meters.system import DEFAULT_CONTRIB_METRICS, FilesystemList, SystemMeters, contrib_config

DELTA = {kind: AggregationTemporality.DELTA
         for kind in (Counter, UpDownCounter, Histogram, ObservableCounter, ObservableUpDownCounter)}
READERS = {
    "cumulative": {},
    "delta": {"preferred_temporality": DELTA},
    "delta, gauges dropped": {"preferred_temporality": DELTA, "preferred_aggregation": {ObservableGauge: DropAggregation()}},
}


class ScriptedHost:
    """psutil answering from real readings taken once, moved forward by ``step``: every counter
    grows, gauges change, the clocks advance. Both paths read the same values at a step."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.step = 0
        self.percpu = psutil.cpu_times(percpu=True)
        self.memory = psutil.virtual_memory()
        self.disks = psutil.disk_io_counters(perdisk=True)
        self.nics = psutil.net_io_counters(pernic=True)
        self.usage = psutil.disk_usage("/")
        process = psutil.Process()
        self.process_times, self.process_memory = process.cpu_times(), process.memory_info()
        swap = psutil.swap_memory()
        self.swap = swap._replace(total=2 ** 30, used=2 ** 28, free=3 * 2 ** 28)  # with swap: the ratio's branch
        for name, value in (("cpu_times", self.cpu_times), ("virtual_memory", self.virtual_memory),
                            ("swap_memory", self.swap_memory), ("disk_io_counters", self.disk_io_counters),
                            ("net_io_counters", self.net_io_counters), ("disk_usage", self.disk_usage),
                            ("pids", lambda: list(range(100 + 7 * self.step))),
                            ("getloadavg", lambda: (0.5 + self.step, 0.25 + self.step, 0.125 + self.step)),
                            ("_timer", self.clock)):
            monkeypatch.setattr(psutil, name, value)
        platform = psutil._psplatform.Process
        monkeypatch.setattr(platform, "cpu_times", lambda _: self.process_times._replace(
            user=self.process_times.user + 0.25 * self.step, system=self.process_times.system + 0.125 * self.step))
        monkeypatch.setattr(platform, "memory_info", lambda _: self.process_memory._replace(
            rss=self.process_memory.rss + 8192 * self.step, vms=self.process_memory.vms + 4096 * self.step))
        monkeypatch.setattr(platform, "num_threads", lambda _: 3 + self.step)
        monkeypatch.setattr(platform, "num_fds", lambda _: 10 + 2 * self.step)
        # psutil's per-thread previous sample for cpu_times_percent, as our meters take theirs at start.
        monkeypatch.setitem(psutil._last_per_cpu_times_2, threading.get_ident(), self.cpu_times(percpu=True))
        monkeypatch.setattr(system, "time", types.SimpleNamespace(time=lambda: 1.9e9 + 10 * self.step,
                                                                   monotonic=time.monotonic))

    def clock(self) -> float:
        return 5000.0 + 10.0 * self.step

    def cpu_times(self, percpu: bool = False):
        times = [type(t)(*(value + self.step * 0.37 * (field + 1) * (cpu + 1) for field, value in enumerate(t)))
                 for cpu, t in enumerate(self.percpu)]
        return times if percpu else times[0]

    def virtual_memory(self):
        moved = 4096 * self.step
        return self.memory._replace(used=self.memory.used + moved, free=self.memory.free - moved,
                                    cached=self.memory.cached + moved // 2, available=self.memory.available - moved)

    def swap_memory(self):
        moved = 2 ** 20 * self.step
        return self.swap._replace(used=self.swap.used + moved, free=self.swap.free - moved)

    def disk_io_counters(self, perdisk: bool = False, nowrap: bool = True):
        return {name: c._replace(read_bytes=c.read_bytes + 512 * self.step, write_bytes=c.write_bytes + 1024 * self.step,
                                 read_count=c.read_count + self.step, write_count=c.write_count + 2 * self.step)
                for name, c in self.disks.items()}

    def net_io_counters(self, pernic: bool = False, nowrap: bool = True):
        return {name: c._replace(bytes_sent=c.bytes_sent + 100 * self.step, bytes_recv=c.bytes_recv + 300 * self.step,
                                 packets_sent=c.packets_sent + self.step)
                for name, c in self.nics.items()}

    def disk_usage(self, path: str):
        moved = 4096 * self.step
        return self.usage._replace(used=self.usage.used + moved, free=self.usage.free - moved)


@pytest.fixture
def host(monkeypatch):
    host_reads.clear()
    yield ScriptedHost(monkeypatch)
    host_reads.clear()


def _reader(kind: str) -> InMemoryMetricReader:
    return InMemoryMetricReader(**READERS[kind])


def _scopes(data) -> dict[str, list]:
    """scope name -> [(scope identity, metric identity and kind, [(attributes, value, exemplars)], [(start, time)])]."""
    found: dict[str, list] = {}
    for resource_metrics in data.resource_metrics if data else ():
        for scope_metrics in resource_metrics.scope_metrics:
            scope = scope_metrics.scope
            for metric in scope_metrics.metrics:
                sums = hasattr(metric.data, "is_monotonic")
                found.setdefault(scope.name, []).append((
                    (scope.name, scope.version, scope.schema_url, scope_metrics.schema_url),
                    (metric.name, metric.unit, metric.description, type(metric.data).__name__,
                     (metric.data.aggregation_temporality, metric.data.is_monotonic) if sums else None),
                    [(dict(p.attributes), p.value, list(p.exemplars)) for p in metric.data.data_points],
                    [(p.start_time_unix_nano, p.time_unix_nano) for p in metric.data.data_points],
                ))
    return found


def _without_times(metrics: list) -> list:
    return [entry[:3] for entry in metrics]


def _timeline(collections: list[list]) -> list:
    """Each point's start and end as the SDK defines them, with this path's own clock taken out:
    end = the collection's time (one per scope and collection); start = None (gauges), the first time
    its attribute set was seen (cumulative sums: before the first collection, then unchanged), or the
    previous collection's time (delta sums after the first point)."""
    ends = []
    for metrics in collections:
        times = {end for entry in metrics for _, end in entry[3]}
        assert len(times) == 1, "one end time per scope and collection"
        ends.append(times.pop())
    labelled, first_starts = [], {}
    for index, metrics in enumerate(collections):
        for entry in metrics:
            for (attributes, _, _), (start, _) in zip(entry[2], entry[3]):
                if start is None:
                    label = None
                elif start in ends[:index]:
                    label = ("previous collection", ends.index(start) == index - 1)
                else:
                    key = (entry[1][0], tuple(sorted(attributes.items())))
                    first = first_starts.setdefault(key, start)
                    assert start == first and start <= ends[0], "a cumulative start stays the first-seen time"
                    label = "first seen"
                labelled.append((index, entry[1][0], tuple(sorted(attributes.items())), label))
    return labelled


@pytest.mark.parametrize("kind", list(READERS))
def test_default_set_equals_the_contrib_instrumentor(host, monkeypatch, kind):
    from opentelemetry.instrumentation.system_metrics import SystemMetricsInstrumentor

    # Before: the contrib instrumentor, reading through the filtered psutil view it was given.
    before_reader, after_reader = _reader(kind), _reader(kind)
    before = MeterProvider(metric_readers=[before_reader], shutdown_on_exit=False)
    after = MeterProvider(metric_readers=[after_reader], shutdown_on_exit=False)
    monkeypatch.setattr(contrib, "psutil", PsutilView(ttl=0.0))
    instrumentor = SystemMetricsInstrumentor(config=contrib_config(environ={}))
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    instrumentor.instrument(meter_provider=before)
    instrumentor._proc.cpu_percent()  # its first reading is the baseline, as ours is taken at start
    # After: the same metrics as points built at collection time.
    meters = SystemMeters(after, mountpoints=["/"])
    meters.process_cpu = ProcessCpuPercent(clock=host.clock)
    meters.start()
    try:
        assert all(group.direct for group in meters.groups)
        olds, news = [], []
        for step in (1, 2, 3):
            host.step = step
            host_reads.clear()
            olds.append(_scopes(before_reader.get_metrics_data())[contrib.__name__])
            host_reads.clear()
            news.append(_scopes(after_reader.get_metrics_data())[contrib.__name__])
            assert _without_times(news[-1]) == _without_times(olds[-1])
        dropped = kind == "delta, gauges dropped"
        assert [entry[1][0] for entry in news[0]] == [
            name for name in contrib_config(environ={}) if not (dropped and name in _GAUGES)]
        assert _timeline(news) == _timeline(olds)
        # Not constants compared with constants: counters moved, utilizations are real numbers.
        last = {entry[1][0]: entry[2] for entry in news[-1]}
        transmitted = [v for a, v, _ in last["system.network.io"] if a["direction"] == "transmit"]
        assert transmitted and all(v == 100 for v in transmitted) if kind != "cumulative" else transmitted
        if not dropped:
            assert {round(value, 3) for _, value, _ in last["system.cpu.utilization"]} - {0.0}
            assert last["process.cpu.utilization"][0][1] > 0
    finally:
        instrumentor.uninstrument()
        meters.shutdown()


_GAUGES = {"system.cpu.utilization", "system.memory.usage", "system.memory.utilization", "system.swap.usage",
           "system.swap.utilization", "process.cpu.utilization"}


def _pipeline(provider: MeterProvider, host: ScriptedHost) -> tuple[SystemMeters, HostHealth, list]:
    filesystems = FilesystemList(["/"])
    meters = SystemMeters(provider, filesystems=filesystems)
    meters.process_cpu = ProcessCpuPercent(clock=host.clock)
    meters.start()
    health = HostHealth(filesystems=filesystems, max_age=0.0)
    health.cpu = CpuBusy(min_interval=0.0)
    group = health.observe(provider)
    return meters, health, [*meters.groups, group]


@pytest.mark.parametrize("kind", list(READERS))
def test_every_point_equals_the_sdk_observable_path(host, kind):
    sdk_reader, direct_reader = _reader(kind), _reader(kind)
    # A provider with Views gets the SDK's observable instruments (Views apply to those only).
    sdk = MeterProvider(metric_readers=[sdk_reader], views=[View(instrument_name="no.such.instrument")],
                        shutdown_on_exit=False)
    direct = MeterProvider(metric_readers=[direct_reader], shutdown_on_exit=False)
    sdk_meters, _, sdk_groups = _pipeline(sdk, host)
    direct_meters, _, direct_groups = _pipeline(direct, host)
    try:
        assert not any(g.direct for g in sdk_groups) and all(g.direct for g in direct_groups)
        olds, news = [], []
        for step in (1, 2, 3):
            host.step = step
            host_reads.clear()
            olds.append(_scopes(sdk_reader.get_metrics_data()))
            host_reads.clear()
            news.append(_scopes(direct_reader.get_metrics_data()))
            assert sorted(news[-1]) == sorted(olds[-1]) == sorted(
                [contrib.__name__, system.SCOPE, "otel_monitoring.meters.host_health"]
                if kind != "delta, gauges dropped" else [contrib.__name__, system.SCOPE])
            for scope in olds[-1]:
                assert _without_times(news[-1][scope]) == _without_times(olds[-1][scope]), scope
        for scope in olds[0]:
            assert _timeline([n[scope] for n in news]) == _timeline([o[scope] for o in olds])
        ours = {entry[1][0]: entry[2] for entry in news[-1][system.SCOPE]}
        assert ours["system.process.count"][0][1] == (100 + 7 * 3 if kind == "cumulative" else 7)
    finally:
        sdk_meters.shutdown()
        direct_meters.shutdown()


class _Counted:
    def __init__(self, monkeypatch: pytest.MonkeyPatch):
        self.calls: dict[str, int] = {}
        layer = psutil._psplatform
        for name in ("per_cpu_times", "virtual_memory", "swap_memory", "disk_io_counters", "net_io_counters",
                     "pids", "disk_usage"):
            monkeypatch.setattr(layer, name, self._count(name, getattr(layer, name)))
        monkeypatch.setattr(psutil, "getloadavg", self._count("getloadavg", psutil.getloadavg))
        for name in ("cpu_times_percent", "cpu_percent"):  # recomputed from the shared reads instead
            monkeypatch.setattr(psutil, name, self._count(name, getattr(psutil, name)))
        for name in ("cpu_times", "memory_info", "num_threads", "num_fds", "num_ctx_switches", "io_counters"):
            monkeypatch.setattr(layer.Process, name, self._count("process." + name, getattr(layer.Process, name)))
        monkeypatch.setattr(psutil.Process, "cpu_percent", self._count("process.cpu_percent",
                                                                       psutil.Process.cpu_percent))

    def _count(self, name, function):
        def counted(*args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            return function(*args, **kwargs)

        return counted


def test_one_collection_reads_each_psutil_source_once(monkeypatch):
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    # With extras, the contrib instrumentor reads some of the same sources in the same collection.
    extras = ("system.disk.operations", "system.network.packets", "process.context_switches")
    filesystems = FilesystemList(["/"])
    meters = SystemMeters(provider, extra=extras, filesystems=filesystems)
    meters.start()
    health = HostHealth(filesystems=filesystems)
    health.cpu = CpuBusy(min_interval=0.0)
    health.observe(provider)
    try:
        counted = _Counted(monkeypatch)
        host_reads.clear()
        names = {m.name for rm in reader.get_metrics_data().resource_metrics for sm in rm.scope_metrics
                 for m in sm.metrics}
        assert {*DEFAULT_CONTRIB_METRICS, "system.disk.operations", "system.network.packets",
                "process.context_switches", "system.filesystem.usage", "otel_monitoring.host.health.score"} <= names
        read_once = {"per_cpu_times", "virtual_memory", "swap_memory", "disk_io_counters", "net_io_counters", "pids",
                     "disk_usage", "getloadavg", "process.cpu_times", "process.memory_info", "process.num_threads",
                     "process.num_fds", "process.num_ctx_switches"}
        assert {name: counted.calls.get(name, 0) for name in read_once} == dict.fromkeys(read_once, 1)
        assert not {name: n for name, n in counted.calls.items() if name not in read_once}
    finally:
        meters.shutdown()


def test_extras_and_exclusions_with_points_built_at_collection(monkeypatch):
    monkeypatch.setenv("OTEL_PYTHON_SYSTEM_METRICS_EXCLUDED_METRICS", "system.swap.*,process.cpu.*")
    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    meters = SystemMeters(provider, extra=("system.disk.operations", "cpython.gc.*"), mountpoints=["/"])
    meters.start()
    try:
        scopes = _scopes(reader.get_metrics_data())
        contrib_names = [entry[1][0] for entry in scopes[contrib.__name__]]
        assert {"system.disk.operations", "cpython.gc.collections", "system.cpu.time", "system.network.io"} <= set(
            contrib_names)
        assert not [n for n in contrib_names if n.startswith(("system.swap.", "process.cpu."))]
        assert len(contrib_names) == len(set(contrib_names))  # the extras and our points: one scope, no twice
        operations = next(e for e in scopes[contrib.__name__] if e[1][0] == "system.disk.operations")
        assert not [a for a, _, _ in operations[2] if a["device"].startswith(("loop", "ram", "zram"))]
    finally:
        meters.shutdown()


def test_two_readers_each_get_their_own_temporality(host):
    cumulative, delta = _reader("cumulative"), _reader("delta")
    provider = MeterProvider(metric_readers=[cumulative, delta], shutdown_on_exit=False)
    meters = SystemMeters(provider, mountpoints=["/"])
    meters.process_cpu = ProcessCpuPercent(clock=host.clock)
    meters.start()
    try:
        for step in (1, 2):
            host.step = step
            host_reads.clear()
            total = {e[1][0]: e for e in _scopes(cumulative.get_metrics_data())[contrib.__name__]}
            change = {e[1][0]: e for e in _scopes(delta.get_metrics_data())[contrib.__name__]}
        network = {tuple(sorted(a.items())): v for a, v, _ in total["system.network.io"][2]}
        moved = {tuple(sorted(a.items())): v for a, v, _ in change["system.network.io"][2]}
        assert moved and all(moved[key] == (100 if ("direction", "transmit") in key else 300) for key in moved)
        assert all(network[key] > moved[key] for key in moved)
        assert total["system.memory.usage"][2] == change["system.memory.usage"][2]
        assert total["process.cpu.utilization"][2] == change["process.cpu.utilization"][2]
    finally:
        meters.shutdown()


def test_a_forked_child_reports_its_own_process(telemetry):
    meters = SystemMeters(telemetry.meter_provider, mountpoints=["/"], extra=("process.context_switches",))
    meters.start()
    try:
        read = os.fork()
        if read == 0:  # the child: its own pid's process reads, ours and the contrib's extras'
            ok = False
            try:
                host_reads.clear()
                ok = (host_reads.process_reads()._target.pid == os.getpid()
                      and meters._instrumentor._proc._target.pid == os.getpid())
            finally:
                os._exit(0 if ok else 1)
        _, status = os.waitpid(read, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert host_reads.process_reads()._target.pid == os.getpid()
    finally:
        meters.shutdown()


def test_cpu_utilization_over_a_short_window_is_not_scaled_down():
    """psutil scales by max(1, window): a 0.3 s window read as 30 % of its real percentages, so two
    readers sharing the CPU reads (a snapshot reader beside an exporter) summed to 0.3 per CPU. The
    percentages of a window are of that window; one too short to measure keeps the last answer."""
    from collections import namedtuple

    from otel_monitoring.meters import host_reads

    Times = namedtuple("Times", "user nice system idle iowait irq softirq steal guest guest_nice")
    samples = iter([[Times(10, 0, 5, 100, 0, 0, 0, 0, 0, 0)],
                    [Times(10.1, 0, 5.05, 100.15, 0, 0, 0, 0, 0, 0)],     # 0.3 s: 33 % user, 17 % system, 50 % idle
                    [Times(10.101, 0, 5.05, 100.16, 0, 0, 0, 0, 0, 0)]])  # 11 ms later: too short
    percent = host_reads.CpuTimesPercent()
    original = host_reads.shared_psutil
    class Reads:
        def cpu_times(self, percpu=False):
            return next(samples)
    host_reads.shared_psutil = Reads()
    try:
        percent.start()
        first = percent.read()[0]
        assert (first.user, first.system, first.idle) == (33.3, 16.7, 50.0)
        assert percent.read()[0] == first
    finally:
        host_reads.shared_psutil = original
