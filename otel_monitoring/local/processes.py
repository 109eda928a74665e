"""One snapshot directory, many processes: who writes which file, and one notification per alert.

Several processes can share ``OTEL_MONITORING_SNAPSHOT_DIR`` (a bot and an API on one box, the
workers of one server). Each writes its own ``metrics_live.<service>.<pid>.json`` and
``alerts.<service>.<pid>.json``, so none overwrites another, then rewrites the directory's
``metrics_live.json`` and ``alerts.json`` as the total of every live process (``merge_snapshots``,
``merge_alerts``) with the list of processes, under an ``flock`` so two writers never interleave.
Readers (``top``, ``report``, ``alerts``) read those two files as before. A process whose file is
older than three intervals (or 30 s), or whose last document says it ended (written at shutdown),
is listed as stopped, its counters' rates are 0, and it is left out of the current state (gauges,
budgets, host readings, alerts) as soon as another process has written, unless no process is
running (then the last state of each is shown, as for a stopped single process). So a restarted
process' readings replace its predecessor's at its first snapshot: a budget's limit, an alert the
old configuration fired, do not outlive the process that had them. Its calls (counters,
histograms) stay in the total, which never goes down while processes come and go.

Every process evaluates the alert rules on its own metrics, so the same alert (same id) can start
or end in several of them within one evaluation interval; ``claim_notification`` lets the first
one notify (and record the event in the history) and the others skip, through a small ledger
(``notified.json``) under an ``flock``. A process' own later event of the same kind (an alert that
fires again after resolving) is never skipped, nor is an event whose earlier claim was made by a
process that has since ended (a restart's own evaluation, e.g. a budget over its new limit).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
from typing import Any

from .. import names

__all__ = ["LIVE_PREFIX", "ALERTS_PREFIX", "process_key", "process_identity", "combine_rule", "live_file", "alerts_file", "process_files",
           "claim_notification", "merge_snapshots", "merge_alerts", "write_directory_totals"]

LIVE_PREFIX = "metrics_live"
ALERTS_PREFIX = "alerts"
NOTIFIED_FILE = "notified.json"
_LOCK_FILE = ".notified.lock"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def process_key(service_name: str | None, pid: int | None = None) -> str:
    """``<service>.<pid>``: file-name safe, unique among the live processes of one host."""
    service = _UNSAFE.sub("_", service_name or "unknown_service").strip("._") or "unknown_service"
    return f"{service}.{os.getpid() if pid is None else pid}"


def process_identity(service: dict[str, Any] | Any) -> str:
    """Who wrote a history row: ``<service.instance.id>.<pid>`` (the id is new in every process
    unless the user set one, e.g. a pod name shared by a server's workers: the pid tells those
    apart), else ``<service>.<pid>``."""
    service = dict(service or {})
    if service.get("instance_id"):
        return f"{service['instance_id']}.{service.get('pid') or os.getpid()}"
    return process_key(service.get("name"), service.get("pid"))


# Host gauges besides the system.* ones: the host's resource readings, health score and checks.
_HOST_READINGS = ("system.", names.HOST_RESOURCE, names.HOST_HEALTH_SCORE, names.HOST_HEALTH_STATE,
                  names.HOST_HEALTH_STATUS, names.HEALTH_CHECK_STATUS)


def combine_rule(metric: str, field: str = "value") -> str:
    """How one series' readings from several processes make the directory's reading: "sum",
    "max" (percentiles cannot be added) or "newest" (a host gauge: every process measures the same
    host; a budget: every process reads the same shared spend, and the newest reading is the
    current configuration's limit, not one a restart replaced)."""
    if metric.startswith(_HOST_READINGS):
        return "newest"  # the host's readings and checks: each process measures the same host
    if field in ("p50", "p95", "p99"):
        return "max"
    if "budget" in metric:
        return "newest"
    return "sum"


def live_file(directory: str, key: str) -> str:
    return os.path.join(directory, f"{LIVE_PREFIX}.{key}.json")


def alerts_file(directory: str, key: str) -> str:
    return os.path.join(directory, f"{ALERTS_PREFIX}.{key}.json")


def process_files(directory: str) -> list[tuple[str, str, str]]:
    """(key, live file, alerts file) of every process that wrote to ``directory``."""
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    found = []
    for name in sorted(names):
        if name.startswith(f"{LIVE_PREFIX}.") and name.endswith(".json") and name != f"{LIVE_PREFIX}.json":
            key = name[len(LIVE_PREFIX) + 1:-len(".json")]
            found.append((key, os.path.join(directory, name), alerts_file(directory, key)))
    return found


def claim_notification(directory: str, alert_id: str, kind: str, when: float, window_s: float,
                       owner: str | None = None) -> bool:
    """True if this process is the one to notify (and record) ``kind`` (firing, resolved...) of
    ``alert_id``: no other process of the directory has claimed that same event within
    ``window_s`` seconds. ``owner`` names this process: its own repeated events (an alert that
    fires again after resolving) are always its to notify. On any trouble with the ledger it
    answers True: a duplicate beats a lost notification."""
    try:
        lock_fd = os.open(os.path.join(directory, _LOCK_FILE), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError:
        return True
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        path = os.path.join(directory, NOTIFIED_FILE)
        try:
            with open(path, encoding="utf-8") as handle:
                ledger: dict[str, Any] = json.load(handle)
            if not isinstance(ledger, dict):
                ledger = {}
        except (OSError, ValueError):
            ledger = {}
        entry = f"{alert_id}\x1f{kind}"
        last, last_owner = _claim(ledger.get(entry))
        if (last is not None and abs(when - last) < window_s and (owner is None or last_owner != owner)
                and not (last_owner is not None and last_owner in _ended_owners(directory))):
            return False
        ledger[entry] = [when, owner]
        # Keep the ledger small: entries older than a day cannot suppress anything useful.
        ledger = {k: v for k, v in ledger.items() if _claim(v)[0] is not None and when - _claim(v)[0] < 86400}
        temporary = f"{path}.{os.getpid()}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump(ledger, handle)
        os.replace(temporary, path)
        return True
    except OSError:
        return True
    finally:
        os.close(lock_fd)  # closing releases the flock


def _ended_owners(directory: str) -> set[str]:
    """The identities of the processes whose last snapshot says they ended: an event one of them
    notified is not the same evaluation as a restart's (a budget over its new limit is news)."""
    from .files import read_json

    ended = set()
    for _key, live_path, _alerts_path in process_files(directory):
        doc = read_json(live_path)
        if isinstance(doc, dict) and doc.get("ended"):
            ended.add(process_identity(doc.get("service")))
    return ended


def _claim(value: Any) -> tuple[float | None, str | None]:
    """(time, owner) of a ledger entry: ``[time, owner]``, or a bare time written by an earlier version."""
    if isinstance(value, (int, float)):
        return float(value), None
    if isinstance(value, list) and len(value) == 2 and isinstance(value[0], (int, float)):
        return float(value[0]), value[1] if isinstance(value[1], str) else None
    return None, None


# --- the directory's total ---

STALE_INTERVALS = 3
MIN_STALE_S = 30.0
PRUNE_AFTER_S = 86400.0  # a stopped process' files are deleted after a day
_SEVERITY_OF_STATE = {"firing": 3, "pending": 2, "resolved": 1}


def _live(documents: list[tuple[str, dict[str, Any]]]) -> tuple[list[tuple[str, dict]], float]:
    """The processes whose readings make the directory's: those still running (a recent document
    that does not say it ended); when none is, the recent ones (the last state of what stopped)
    but those that ended before another started."""
    newest = max(float(doc.get("timestamp_unix") or 0.0) for _key, doc in documents)
    recent = []
    for key, doc in documents:
        age = newest - float(doc.get("timestamp_unix") or 0.0)
        if age <= max(MIN_STALE_S, STALE_INTERVALS * float(doc.get("interval_s") or 5.0)):
            recent.append((key, doc))
    running = [(key, doc) for key, doc in recent if not doc.get("ended")]
    if running:
        return running, newest
    # Every one ended: a process that ended before another started was replaced by it (a restart).
    starts = [float(doc.get("started_unix") or 0.0) for _key, doc in recent]
    return [(key, doc) for key, doc in recent
            if not any(start >= float(doc.get("timestamp_unix") or 0.0) for start in starts)], newest


def _attributes_key(point: dict[str, Any]) -> str:
    return json.dumps(point.get("attributes", {}), sort_keys=True, default=str)


def _add(a: Any, b: Any) -> Any:
    if a is None:
        return b
    if b is None:
        return a
    return a + b


def _pick(values: list[Any], choose: Any) -> Any:
    present = [v for v in values if v is not None]
    return choose(present) if present else None


def _ts(doc: dict[str, Any]) -> float:
    return float(doc.get("timestamp_unix") or 0.0)


def _rated(live: list[tuple[str, dict]], newest: float) -> set[str]:
    """The processes whose counter rates count in the total: those running; when none is, those
    still running at the last state's time (a last snapshot within an interval of the newest). An
    ended process' rate is 0 once another outlived it: it no longer calls anything."""
    running = {key for key, doc in live if not doc.get("ended")}
    if running:
        return running
    return {key for key, doc in live if newest - _ts(doc) <= float(doc.get("interval_s") or 5.0)}


def merge_snapshots(documents: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The total of several processes' metrics_live documents, with ``processes`` listing each.

    Same series (name and attributes) in several processes: counters and their rates add up;
    histograms add counts and sums, keep the extreme min and max, and take the highest
    percentile of any process (percentiles cannot be added); host readings (``system.*``, the host's
    resource utilization, health score and checks) and budgets (spent, limit, utilization) come from
    the newest document, other gauges add up (``combine_rule``).

    Counters and histograms count what every process did, ended ones too (their files stay for a
    day), so the total never goes down while processes come and go; the rate of a process that is
    not running is 0 (``_rated``). Gauges, host readings and budgets are current state: a process
    that ended is left out of them once another runs (``_live``), so a restart's limit replaces its
    predecessor's."""
    live, newest = _live(documents)
    live_keys = {key for key, _doc in live}
    rated = _rated(live, newest)
    merged: dict[str, Any] = {}
    for section in ("counters", "gauges", "histograms"):
        table: dict[str, dict[str, dict[str, Any]]] = {}
        for key, doc in sorted(documents, key=lambda item: _ts(item[1])):
            for name, points in (doc.get(section) or {}).items():
                rule = combine_rule(name)
                if key not in live_keys and (section == "gauges" or rule == "newest"):
                    continue  # current state: only the processes shown as the directory's state
                series = table.setdefault(name, {})
                for point in points:
                    k = _attributes_key(point)
                    seen = series.get(k)
                    if section == "counters" and key not in rated and point.get("rate_per_s") is not None:
                        point = {**point, "rate_per_s": 0.0}
                    if seen is None or rule == "newest":
                        series[k] = dict(point)  # a host reading: the newest document's
                    elif section == "counters":
                        seen["value"] = _add(seen.get("value"), point.get("value"))
                        seen["rate_per_s"] = _add(seen.get("rate_per_s"), point.get("rate_per_s"))
                    elif section == "histograms":
                        seen["count"] = _add(seen.get("count"), point.get("count"))
                        seen["sum"] = _add(seen.get("sum"), point.get("sum"))
                        seen["min"] = _pick([seen.get("min"), point.get("min")], min)
                        seen["max"] = _pick([seen.get("max"), point.get("max")], max)
                        for label in ("p50", "p95", "p99"):
                            seen[label] = _pick([seen.get(label), point.get(label)], max)
                    elif rule == "max":
                        seen["value"] = _pick([seen.get("value"), point.get("value")], max)
                    else:
                        seen["value"] = _add(seen.get("value"), point.get("value"))
        merged[section] = {name: list(series.values()) for name, series in table.items()}
    newest_doc = max(documents, key=lambda item: _ts(item[1]))[1]
    units: dict[str, str] = {}
    for _key, doc in sorted(documents, key=lambda item: _ts(item[1])):
        units.update(doc.get("units") or {})
    running = {key for key, doc in live if not doc.get("ended")}
    processes = [{"key": key, **(doc.get("service") or {}), "timestamp_unix": doc.get("timestamp_unix"),
                  "state": "live" if key in running else "stopped"} for key, doc in documents]
    services = sorted({str((doc.get("service") or {}).get("name")) for _key, doc in live
                       if (doc.get("service") or {}).get("name")})
    service = dict(newest_doc.get("service") or {})
    if len(live) > 1:
        service = {"name": " + ".join(services) + f" ({len(live)} processes)",
                   "host": service.get("host"), "instance_id": None}
    merged_doc = {**newest_doc, **merged, "units": units, "service": service, "processes": processes,
                  "timestamp_unix": newest_doc.get("timestamp_unix")}
    if running:
        merged_doc.pop("ended", None)  # the directory's total ended only when every process shown did
    return merged_doc


def merge_alerts(documents: list[tuple[str, dict[str, Any]]], live_keys: set[str]) -> dict[str, Any]:
    """The alerts of the live processes, one entry per alert id (the most advanced state; its
    earliest ``since``), each listing the processes that see it."""
    by_id: dict[str, dict[str, Any]] = {}
    newest: dict[str, Any] = {}
    for key, doc in documents:
        if key not in live_keys:
            continue
        if str(doc.get("timestamp", "")) >= str(newest.get("timestamp", "")):
            newest = doc
        for alert in doc.get("alerts") or []:
            seen = by_id.get(alert.get("id"))
            if seen is None:
                seen = by_id[alert.get("id")] = {**alert, "processes": []}
            elif _SEVERITY_OF_STATE.get(alert.get("state"), 0) > _SEVERITY_OF_STATE.get(seen.get("state"), 0):
                seen.update({k: v for k, v in alert.items() if k != "since"})
            if str(alert.get("since", "")) < str(seen.get("since", "")):
                seen["since"] = alert["since"]
            seen["processes"].append(key)
    return {**newest, "alerts": list(by_id.values())}


def write_directory_totals(directory: str) -> None:
    """Rewrite metrics_live.json and alerts.json from every process' files (under the lock)."""
    from .files import atomic_write_json, read_json

    lock_fd = os.open(os.path.join(directory, ".totals.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        snapshots, alerts = [], []
        for key, live_path, alerts_path in process_files(directory):
            doc = read_json(live_path)
            if not isinstance(doc, dict):
                continue
            snapshots.append((key, doc))
            alert_doc = read_json(alerts_path)
            if isinstance(alert_doc, dict):
                alerts.append((key, alert_doc))
        if not snapshots:
            return
        live, newest = _live(snapshots)
        for key, doc in snapshots:  # the files of processes gone for a day
            if newest - float(doc.get("timestamp_unix") or 0.0) > PRUNE_AFTER_S:
                for path in (live_file(directory, key), alerts_file(directory, key)):
                    try:
                        os.remove(path)
                    except OSError:
                        pass
        atomic_write_json(os.path.join(directory, f"{LIVE_PREFIX}.json"), merge_snapshots(snapshots))
        if alerts:
            atomic_write_json(os.path.join(directory, f"{ALERTS_PREFIX}.json"),
                              merge_alerts(alerts, {key for key, _doc in live}))
    finally:
        os.close(lock_fd)
