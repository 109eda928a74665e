"""One snapshot directory shared by several real processes: none overwrites another's files, the
directory's metrics_live.json, top and alerts show every process and their total, an alert seen by
two processes is notified once, and a budget's spend survives a restart and adds up across
processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from support import REPO, clean_env

BIN = os.path.dirname(sys.executable)

WORKER = """
import json, sys, time
import otel_monitoring
service, calls, hold = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
otel_monitoring.configure(service_name=service, exporter="none", system_metrics=False,
                          snapshot_interval=0.5, alert_rules=sys.argv[4], alert_routes="log=info")
from opentelemetry import metrics
counter = metrics.get_meter("app").create_counter("app.orders", unit="{order}")
errors = metrics.get_meter("app").create_counter("app.errors", unit="{error}")
counter.add(calls, {"side": "buy"})
errors.add(1)
print("ready", flush=True)
time.sleep(hold)
"""

RULES = """
metrics:
  app.errors: {type: counter, unit: "{error}"}
rules:
  - id: app_errors
    name: Application errors
    expr:
      metric: app.errors
    op: ">="
    threshold: 1
    severity: warning
"""


def env() -> dict[str, str]:
    return clean_env(PYTHONPATH=os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))


def wait_json(path: str, predicate, limit: float = 90.0):
    import time

    deadline = time.monotonic() + limit
    last = None
    while time.monotonic() < deadline:
        try:
            with open(path, encoding="utf-8") as handle:
                last = json.load(handle)
            if predicate(last):
                return last
        except (OSError, ValueError):
            pass
        time.sleep(0.2)
    raise AssertionError(f"{path} never matched; last read: {last}")


def test_two_processes_share_a_snapshot_directory(tmp_path):
    directory = tmp_path / "snapshots"
    rules = tmp_path / "rules.yaml"
    rules.write_text(textwrap.dedent(RULES))
    environment = dict(env(), OTEL_MONITORING_SNAPSHOT_DIR=str(directory))
    workers = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(WORKER), service, str(calls), "8", str(rules)],
                                env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for service, calls in (("bot", 7), ("api", 5))]
    try:
        for worker in workers:
            assert worker.stdout.readline().strip() == "ready"
        total = wait_json(str(directory / "metrics_live.json"),
                          lambda doc: len([p for p in doc.get("processes", []) if p["state"] == "live"]) == 2
                          and doc["counters"].get("app.orders", [{}])[0].get("value") == 12.0)
        assert sorted(p["name"] for p in total["processes"]) == ["api", "bot"]
        assert sorted(p["pid"] for p in total["processes"]) == sorted(w.pid for w in workers)
        assert total["service"]["name"] == "api + bot (2 processes)"
        # Each process' own file holds its own numbers only.
        own = {json.loads(path.read_text())["service"]["name"]: json.loads(path.read_text())
               for path in directory.glob("metrics_live.*.*.json")}
        assert {name: doc["counters"]["app.orders"][0]["value"] for name, doc in own.items()} == {"bot": 7.0, "api": 5.0}

        alerts = wait_json(str(directory / "alerts.json"),
                           lambda doc: any(a["state"] == "firing" and len(a.get("processes", [])) == 2
                                           for a in doc.get("alerts", [])))
        assert [a["id"] for a in alerts["alerts"]] == ["app_errors"]

        top = subprocess.run([os.path.join(BIN, "otel-monitoring"), "top", "--once", "--dir", str(directory)],
                             env=env(), capture_output=True, text=True, timeout=60)
        assert top.returncode == 0, top.stderr
        assert "api + bot (2 processes)" in top.stdout
        listing = subprocess.run([os.path.join(BIN, "otel-monitoring"), "alerts", "list", "--dir", str(directory)],
                                 env=env(), capture_output=True, text=True, timeout=60)
        assert "app_errors" in listing.stdout and "2 processes" in listing.stdout
    finally:
        outputs = [worker.communicate(timeout=60) for worker in workers]
    # The alert fired in both processes and was notified (log channel) by exactly one of them.
    notified = [line for _out, err in outputs for line in err.splitlines() if "app_errors" in line and "FIRING" in line.upper()]
    assert len(notified) == 1, notified


BUDGET = """
import sys, otel_monitoring
otel_monitoring.configure(service_name="spender", exporter="none", system_metrics=False,
                          budgets=f"daily:total={sys.argv[2] if len(sys.argv) > 2 else 10}", alert_rules="none")
events = []
otel_monitoring.add_budget_listener(lambda event: events.append(round(event.threshold * 100)))
otel_monitoring.record_cost(float(sys.argv[1]), "model_inference")
print(events)
"""


def run_budget(directory, amount: float, limit: float = 10, stderr: list | None = None) -> list[int]:
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(BUDGET), str(amount), str(limit)],
                            env=dict(env(), OTEL_MONITORING_SNAPSHOT_DIR=str(directory)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    if stderr is not None:
        stderr.append(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_changed_limit_announces_every_level_crossed_once_in_order(tmp_path):
    """The ledger kept the levels announced against the old limit: after a restart with a lower one, a
    jump past all three levels logged 90 % and 100 % but not 80 %."""
    directory = tmp_path / "snapshots"
    assert run_budget(directory, 8.5, limit=10) == [80]  # one jump from $0 to 85 %
    logs: list[str] = []
    assert run_budget(directory, 0.01, limit=1, stderr=logs) == [80, 90, 100]  # $8.51 of the new $1
    reached = [line.split("reached ", 1)[1].split("%", 1)[0] for line in logs[0].splitlines() if "reached" in line]
    assert reached == ["80", "90", "100"], logs[0]
    assert run_budget(directory, 0.01, limit=1) == []  # once


def test_budget_spend_survives_restarts_and_adds_up_across_processes(tmp_path):
    directory = tmp_path / "snapshots"
    assert run_budget(directory, 9) == [80, 90]  # $9 of $10
    assert run_budget(directory, 2) == [100]     # restarted: $11 of $10, the earlier thresholds not repeated
    # Two processes spending at once: the ledger adds both, and 100 % is not announced again.
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(BUDGET), "0.5"],
                              env=dict(env(), OTEL_MONITORING_SNAPSHOT_DIR=str(directory)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        assert json.loads(out.strip().splitlines()[-1]) == []
    ledger = json.loads((directory / "budgets.json").read_text())
    assert [entry["spent_usd"] for entry in ledger.values()] == ["12.0"]


HISTORY_WORKER = """
import os, sys, time
import otel_monitoring
service, first, cost, directory, rules = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4], sys.argv[5]
otel_monitoring.configure(service_name=service, exporter="none", system_metrics=False, snapshot_interval=0.5,
                          alert_rules=rules, alert_routes="log=info")
from opentelemetry import metrics
orders = metrics.get_meter("app").create_counter("app.orders", unit="{order}")
errors = metrics.get_meter("app").create_counter("app.errors", unit="{error}")
orders.add(first, {"side": "buy"})
errors.add(1)
otel_monitoring.record_cost(cost, "model_inference")
print("ready", flush=True)
more = False
while not os.path.exists(os.path.join(directory, f"stop-{service}")):
    if not more and os.path.exists(os.path.join(directory, f"more-{service}")):
        more = True
        orders.add(3, {"side": "buy"})
        otel_monitoring.record_cost(0.125, "model_inference")
        print("more", flush=True)
    time.sleep(0.1)
"""


def _poll(predicate, what: str, limit: float = 120.0):
    import time

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"never happened: {what}")


def test_history_keeps_two_processes_apart_and_adds_them_up(tmp_path):
    """Two real processes append to one history.sqlite: each row carries its process, the total a
    reader gets never goes down (a stopped process keeps what it counted), the report's cost is
    both processes' spend, and an alert both fire is in the alert history once."""
    from otel_monitoring.local.history import HistoryStore

    directory = tmp_path / "snapshots"
    directory.mkdir()
    rules = tmp_path / "rules.yaml"
    rules.write_text(textwrap.dedent(RULES))
    environment = dict(env(), OTEL_MONITORING_SNAPSHOT_DIR=str(directory), OTEL_MONITORING_HISTORY_INTERVAL="0.5")
    workers = {service: subprocess.Popen([sys.executable, "-c", textwrap.dedent(HISTORY_WORKER), service, str(first),
                                          str(cost), str(directory), str(rules)],
                                         env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for service, first, cost in (("bot", 7, 0.25), ("api", 5, 0.5))}
    store = HistoryStore(str(directory))
    try:
        for worker in workers.values():
            assert worker.stdout.readline().strip() == "ready"

        def own_last(service: str):
            rows = [r for r in store.process_series("app.orders")
                    if r[1] in {p["key"] for p in store.processes() if p["service"] == service}]
            return rows[-1][3] if rows else None

        _poll(lambda: own_last("bot") == 7 and own_last("api") == 5, "both processes' first rows")
        (directory / "more-api").touch()  # the api counts 3 more and spends $0.125 more...
        assert workers["api"].stdout.readline().strip() == "more"
        (directory / "stop-bot").touch()  # ...while the bot stops
        workers["bot"].communicate(timeout=120)
        _poll(lambda: own_last("api") == 8, "the api's later row")
        _poll(lambda: len([r for r in store.series("app.orders") if r[2] == 15]) >= 2,
              "the total after the bot stopped")
        (directory / "stop-api").touch()
        workers["api"].communicate(timeout=120)
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                worker.kill()
                worker.communicate()

    processes = store.processes()
    assert sorted(p["service"] for p in processes) == ["api", "bot"]
    assert sorted(p["pid"] for p in processes) == sorted(w.pid for w in workers.values())
    assert len({p["instance_id"] for p in processes}) == 2  # each its own service.instance.id
    key_of = {p["service"]: p["key"] for p in processes}
    by_process = store.process_series("app.orders")
    assert {value for _t, key, _a, value in by_process if key == key_of["bot"]} == {7.0}
    api = [value for _t, key, _a, value in by_process if key == key_of["api"]]
    assert api == sorted(api) and set(api) == {5.0, 8.0}
    # The directory's total: never down (rows of the two used to interleave: 7, 5, 7, 5...), the
    # bot's 7 still in it after it stopped, 15 in the end.
    total = [value for _t, _a, value in store.series("app.orders")]
    assert total == sorted(total) and total[-1] == 15.0 and set(total) <= {5.0, 7.0, 12.0, 15.0}, total
    # Every reader of the history: the report's spend in the window is both processes' ($0.25 + $0.5 + $0.125).
    page = tmp_path / "report.html"
    report = subprocess.run([os.path.join(BIN, "otel-monitoring"), "report", "--html", str(page), "--dir", str(directory)],
                            env=env(), capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    assert "Spent in the last 24 hours: <b>$0.875</b>" in page.read_text()
    # The alert both processes fired is in the history once, recorded by one of them.
    firing = [e for e in store.alert_events() if e["alert_id"] == "app_errors" and e["event"] == "firing"]
    assert len(firing) == 1 and firing[0]["process"] in key_of.values(), firing
    listing = subprocess.run([os.path.join(BIN, "otel-monitoring"), "alerts", "list", "--dir", str(directory),
                              "--history", "1h"], env=env(), capture_output=True, text=True, timeout=60)
    history = listing.stdout.split("Alert events of the last 1h:")[1]
    assert len([line for line in history.splitlines() if "firing" in line and "app_errors" in line]) == 1, history


def test_host_readings_of_processes_sharing_a_directory_are_the_newest_not_their_sum():
    """Two processes on one host both measure its CPU, health score and checks: the directory's
    reading is the newest process', never the sum (which read CPU 141 % and health 175)."""
    from otel_monitoring import names
    from otel_monitoring.local.processes import merge_snapshots

    def doc(when: float, cpu: float, score: float, check: float, queue: float) -> dict:
        return {"timestamp_unix": when, "interval_s": 5.0, "service": {"name": "x"},
                "counters": {}, "histograms": {},
                "gauges": {names.HOST_RESOURCE_UTILIZATION: [{"attributes": {"resource": "cpu"}, "value": cpu}],
                           names.HOST_HEALTH_SCORE: [{"attributes": {}, "value": score}],
                           names.HEALTH_CHECK_STATUS: [{"attributes": {names.HEALTH_CHECK_NAME: "disk"}, "value": check}],
                           "system.cpu.utilization": [{"attributes": {}, "value": cpu}],
                           "app.queue.depth": [{"attributes": {}, "value": queue}]}}

    merged = merge_snapshots([("bot", doc(1000.0, 0.70, 88.0, 1.0, 3.0)), ("api", doc(1001.0, 0.71, 87.5, 1.0, 4.0))])
    gauges = {name: points[0]["value"] for name, points in merged["gauges"].items()}
    assert gauges == {names.HOST_RESOURCE_UTILIZATION: 0.71, names.HOST_HEALTH_SCORE: 87.5,
                      names.HEALTH_CHECK_STATUS: 1.0, "system.cpu.utilization": 0.71,
                      "app.queue.depth": 7.0}  # the app's own gauges still add up


RESTART = """
import os, sys, time
import otel_monitoring
limit, spend, interval, directory = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
otel_monitoring.configure(service_name="bot", exporter="none", system_metrics=False, snapshot_interval=interval,
                          budgets=f"daily:total={limit}", alert_routes="log=info")
otel_monitoring.record_cost(spend, "model_inference", model="gpt-4o")
print("ready", flush=True)
while not os.path.exists(os.path.join(directory, f"stop-{os.getpid()}")) and len(sys.argv) > 5:
    time.sleep(0.1)
"""


def test_a_restart_with_a_new_limit_replaces_the_old_budget_state_in_every_view(tmp_path):
    """A process spent $1.15 of a $1 budget and ended; restarted with a $2 limit and $0.05 more, every
    view said 115 % (the ended process' reading was kept for three intervals, and the directory took the
    highest of the two). The budget is now the running configuration's limit against the day's spend:
    $1.20 of $2.00, 60 %, no budget alert, in alerts list, top, the report and the notifications."""
    directory = tmp_path / "snapshots"
    environment = dict(env(), OTEL_MONITORING_SNAPSHOT_DIR=str(directory))
    cli = os.path.join(BIN, "otel-monitoring")
    # The first process: a long interval, so its last snapshot would count as live for a minute.
    first = subprocess.run([sys.executable, "-c", textwrap.dedent(RESTART), "1.0", "1.15", "20", str(directory)],
                           env=environment, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    before = json.loads(subprocess.run([cli, "alerts", "list", "--json", "--dir", str(directory)], env=env(),
                                       capture_output=True, text=True, timeout=60).stdout)
    assert {a["id"]: round(a["value"], 4) for a in before if "budget" in a["id"] and a["state"] == "firing"} == {
        "daily_cost_near_budget:daily:total": 1.15, "daily_cost_over_budget:daily:total": 1.15}

    second = subprocess.Popen([sys.executable, "-c", textwrap.dedent(RESTART), "2.0", "0.05", "0.5", str(directory), "hold"],
                              env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert second.stdout.readline().strip() == "ready"

        def budget(doc):
            return {p["attributes"].get("otel_monitoring.budget.name"): p["value"]
                    for p in doc.get("gauges", {}).get("otel_monitoring.cost.budget.utilization", [])}

        # Read at the restart's first snapshot, while the first process' last one is seconds old.
        total = wait_json(str(directory / "metrics_live.json"),
                          lambda doc: any(p["pid"] == second.pid and p["state"] == "live" for p in doc["processes"]))
        assert budget(total) == {"daily:total": 0.6}
        assert [p["state"] for p in total["processes"] if p["pid"] != second.pid] == ["stopped"]
        views = _budget_views(cli, directory, tmp_path)
        assert views == {"alerts": {}, "top": "60.0% $1.20 of $2.00", "report": "60.0%"}, views
    finally:
        (directory / f"stop-{second.pid}").touch()
        _out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    # Notified: nothing about the budget (60 % is under every level), by the log channel or as an event.
    assert [line for line in err.splitlines() if "budget" in line.lower()] == []
    # Both ended: the last state shown is still the restart's.
    assert _budget_views(cli, directory, tmp_path) == views


def _budget_views(cli: str, directory, tmp_path) -> dict:
    import re

    listing = subprocess.run([cli, "alerts", "list", "--json", "--dir", str(directory)], env=env(),
                             capture_output=True, text=True, timeout=60)
    assert listing.returncode == 0, listing.stderr
    alerts = {a["id"]: a["value"] for a in json.loads(listing.stdout)
              if "budget" in a["id"] and a["state"] in ("pending", "firing")}
    top = subprocess.run([cli, "top", "--once", "--dir", str(directory)], env=env(), capture_output=True, text=True,
                         timeout=60)
    assert top.returncode == 0, top.stderr
    shown = re.search(r"budget daily:total daily ([\d.]+% \S+ of \S+)", top.stdout)
    page = tmp_path / "report.html"
    report = subprocess.run([cli, "report", "--html", str(page), "--dir", str(directory)], env=env(),
                            capture_output=True, text=True, timeout=120)
    assert report.returncode == 0, report.stderr
    used = re.search(r"budget daily:total daily: <b[^>]*>([\d.]+%)</b> used", page.read_text())
    return {"alerts": alerts, "top": shown and shown.group(1), "report": used and used.group(1)}


def test_a_restart_still_over_its_new_limit_notifies_the_new_value(tmp_path):
    """The first process notified 'over budget, 115 %' of $1. Restarted with $1.10 and $0.05 more, the
    budget is at 109.1 % of the new limit; that firing was skipped as the first process' (same alert,
    within the directory's 30 s), so the last notification still said 115 % of the old limit."""
    directory = tmp_path / "snapshots"
    environment = dict(env(), OTEL_MONITORING_SNAPSHOT_DIR=str(directory))
    notified = []
    for limit, spend in (("1.0", "1.15"), ("1.1", "0.05")):
        run = subprocess.run([sys.executable, "-c", textwrap.dedent(RESTART), limit, spend, "20", str(directory)],
                             env=environment, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        notified.append([line.split(": value ")[1].split(",")[0] for line in run.stderr.splitlines()
                         if line.startswith("[FIRING critical] Daily cost over budget")])
    assert notified == [["115.0%"], ["109.1%"]]


CALLER = """
import os, sys, time
import otel_monitoring
service, burst, directory = sys.argv[1], int(sys.argv[2]), sys.argv[3]
otel_monitoring.configure(service_name=service, exporter="none", system_metrics=False, snapshot_interval=0.5,
                          alert_rules="none")
for _ in range(burst):
    otel_monitoring.record_operation("worker", "job", 0.001)
print("ready", flush=True)
while not os.path.exists(os.path.join(directory, f"stop-{os.getpid()}")):
    if not burst:                 # steady: a call every 10 ms until told to stop
        otel_monitoring.record_operation("worker", "job", 0.001)
    time.sleep(0.01)
"""


def _calls(doc: dict) -> tuple[float, float]:
    """(calls, calls per second) of worker/job in a metrics_live document."""
    from otel_monitoring import names

    points = [p for p in doc.get("counters", {}).get(names.OPERATION_CALLS, []) if "job" in p["attributes"].values()]
    return sum(p["value"] for p in points), sum(p.get("rate_per_s") or 0.0 for p in points)


def test_the_total_keeps_an_ended_process_calls_and_its_rate_is_zero(tmp_path):
    """A steady caller and a burst of 50 calls share a directory; the caller ends, then the burst's
    process. The directory's calls never went down (an ended process' calls dropped out of the total
    while another ran: 284 -> 94), an ended process is `stopped` at once and its rate is 0 (after both
    ended, the total rate was the sum of their last rates)."""
    import threading
    import time

    from otel_monitoring.views import formatting

    directory = tmp_path / "snapshots"
    total_path = directory / "metrics_live.json"
    environment = dict(env(), OTEL_MONITORING_SNAPSHOT_DIR=str(directory))

    def start(service: str, burst: int) -> subprocess.Popen:
        process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(CALLER), service, str(burst), str(directory)],
                                   env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert process.stdout.readline().strip() == "ready"
        return process

    def stop(process: subprocess.Popen) -> dict:
        (directory / f"stop-{process.pid}").touch()
        _out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        return json.loads(next(directory.glob(f"metrics_live.*.{process.pid}.json")).read_text())

    seen: list[float] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            try:
                seen.append(_calls(json.loads(total_path.read_text()))[0])
            except (OSError, ValueError):
                pass
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    caller = burst = None
    try:
        caller = start("bot", 0)
        watcher.start()
        burst = start("api", 50)
        wait_json(str(total_path), lambda doc: sorted(p["state"] for p in doc.get("processes", [])) == ["live", "live"]
                  and _calls(doc)[0] > 100)
        final = stop(caller)
        caller_calls, caller_rate = _calls(final)
        assert final.get("ended") and caller_calls > 100 and caller_rate > 0   # it was calling until its end
        # Several of the burst process' snapshots after the caller's last: its own rate is 0 by then.
        total = wait_json(str(total_path), lambda doc: doc["timestamp_unix"] > final["timestamp_unix"] + 2)
        assert {p["pid"]: p["state"] for p in total["processes"]} == {caller.pid: "stopped", burst.pid: "live"}
        assert _calls(total) == (caller_calls + 50, 0.0)
        top = subprocess.run([os.path.join(BIN, "otel-monitoring"), "top", "--once", "--width", "140",
                              "--dir", str(directory)], env=env(), capture_output=True, text=True, timeout=60)
        assert top.returncode == 0, top.stderr
        row = next(line.split() for line in top.stdout.splitlines() if "worker" in line and "job" in line)
        assert row[2:4] == [formatting.count(caller_calls + 50), "0.00"], top.stdout

        last = stop(burst)
        assert _calls(last) == (50.0, 0.0)
        total = wait_json(str(total_path), lambda doc: doc["timestamp_unix"] >= last["timestamp_unix"])
        assert sorted(p["state"] for p in total["processes"]) == ["stopped", "stopped"]
        assert _calls(total) == (caller_calls + 50, 0.0)
    finally:
        done.set()
        for process in (caller, burst):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate(timeout=60)
    watcher.join(timeout=10)
    assert len(seen) > 10 and all(b >= a for a, b in zip(seen, seen[1:])), seen
