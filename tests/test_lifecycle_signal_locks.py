"""A SIGTERM that lands while the main thread is inside the instrumentation (recording a cost
against a budget, inside a traced call), holding its locks: the flush at the signal still delivers
everything and the process still ends by the signal. Real processes get SIGTERM at varied moments
of a tight loop; each one's metrics file and final snapshot are checked against what the process
itself counted."""

from __future__ import annotations

import glob
import json
import random
import signal
import struct
import subprocess
import sys
import textwrap
import time
from decimal import Decimal

import pytest

from support import read_otlp_file
from test_lifecycle_processes import env_for, wait_line

from otel_monitoring import names

RUNS = 10  # per workload
COST = Decimal("0.001")

APP = textwrap.dedent("""
    import mmap, os, struct, sys
    import otel_monitoring

    otel_monitoring.configure(service_name="signal-loop")
    mode, truth_path = sys.argv[1], sys.argv[2]
    fd = os.open(truth_path, os.O_RDWR | os.O_CREAT)
    os.ftruncate(fd, 16)
    truth = mmap.mmap(fd, 16)  # the kernel keeps what is written when the process is killed

    @otel_monitoring.traced("loop", "step")
    def step(i):
        return i + 1

    n = 0
    print("ready", flush=True)
    while True:
        truth[0:8] = struct.pack("q", n + 1)  # calls started
        if mode == "cost":
            otel_monitoring.record_cost(0.001, "api_call", host="api.example.com")
        else:
            step(n)
        n += 1
        truth[8:16] = struct.pack("q", n)  # calls returned
""")


def last_sum(path: str, metric: str) -> float:
    """The metric's cumulative total in the file's last export that has it (0 if none)."""
    total = None
    for request in read_otlp_file(path, "metrics"):
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for found in scope_metrics.metrics:
                    if found.name == metric:
                        total = sum(point.as_double or point.as_int for point in found.sum.data_points)
    return total or 0.0


def run_once(tmp_path, mode: str, index: int, delay: float) -> None:
    run = tmp_path / f"{mode}-{index}"
    run.mkdir()
    (run / "app.py").write_text(APP)
    snapshots, files, truth = run / "snapshots", run / "files", run / "truth.bin"
    environment = {**env_for(str(files), OTEL_MONITORING_SNAPSHOT_DIR=str(snapshots),
                             OTEL_MONITORING_BUDGETS="daily:total=100000"),
                   "OTEL_TRACES_EXPORTER": "none", "OTEL_METRICS_EXPORTER": "otlp_file"}
    process = subprocess.Popen([sys.executable, str(run / "app.py"), mode, str(truth)], env=environment,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_line(process, "ready")
        # Let the loop run a varied while; the signal lands wherever the main thread is then.
        process.stdout.close()
        time.sleep(delay)
        process.send_signal(signal.SIGTERM)
        _out, errors = process.communicate(timeout=60)  # generous: the bound is 5 s
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == -signal.SIGTERM, errors
    assert "not delivered" not in errors, errors
    started, returned = struct.unpack("qq", truth.read_bytes())

    own = glob.glob(str(snapshots / "metrics_live.signal-loop.*.json"))
    assert len(own) == 1, own
    snapshot = json.loads(open(own[0], encoding="utf-8").read())
    assert snapshot["ended"] is True
    name = names.COST if mode == "cost" else names.OPERATION_CALLS
    in_snapshot = sum(point["value"] for point in snapshot["counters"].get(name, []))
    in_file = last_sum(str(files / "metrics.jsonl"), name)
    per_call = float(COST) if mode == "cost" else 1.0
    # The call the signal interrupted finishes before the flush: counted whole, or not started.
    assert returned <= round(in_file / per_call) <= started, (returned, in_file, started)
    assert in_snapshot == pytest.approx(in_file, rel=1e-9)
    if mode == "cost":
        ledger = json.loads((snapshots / "budgets.json").read_text())
        spent = Decimal(ledger["daily:daily:total"]["spent_usd"])
        assert float(spent) == pytest.approx(in_file, rel=1e-9), (spent, in_file)
        assert spent == COST * round(in_file / per_call)


@pytest.mark.parametrize("mode", ["cost", "traced"])
def test_sigterm_inside_the_instrumentation_delivers_everything_and_ends_by_the_signal(tmp_path, mode):
    delays = random.Random(7).sample(range(0, 400, 7), RUNS)
    for index, delay in enumerate(delays):
        run_once(tmp_path, mode, index, delay / 1000)
