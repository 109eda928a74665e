"""One reading of the metrics and alerts, whatever it came from: the snapshot directory's
``metrics_live.json`` and ``alerts.json`` (docs/snapshots.md) or a running Prometheus
(views/prometheus.py builds the same shape). The views read only this."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable

from .terminal import safe_text, safe_tree

METRICS_FILE = "metrics_live.json"
ALERTS_FILE = "alerts.json"


def attr_key(key: str) -> str:
    """Attribute keys compared loosely: Prometheus turns ``cost.type`` into ``cost_type``."""
    return key.replace(".", "_")


def get_attr(attributes: dict[str, Any], *keys: str) -> Any:
    """The first of ``keys`` present in ``attributes`` (dots and underscores alike), or None."""
    loose = {attr_key(k): v for k, v in attributes.items()}
    for key in keys:
        if attr_key(key) in loose:
            return loose[attr_key(key)]
    return None


def matches(attributes: dict[str, Any], wanted: dict[str, Any] | None) -> bool:
    return not wanted or all(str(get_attr(attributes, k)) == str(v) for k, v in wanted.items())


@dataclass
class Snapshot:
    """Points by kind and metric name, as in metrics_live.json, plus the alerts."""

    timestamp_unix: float | None = None
    service: dict[str, Any] = field(default_factory=dict)
    counters: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    gauges: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    histograms: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    units: dict[str, str] = field(default_factory=dict)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    source: str = ""
    problems: list[str] = field(default_factory=list)  # what could not be read, shown to the operator

    def find(self, kind: str, names: Iterable[str]) -> tuple[str | None, list[dict[str, Any]]]:
        """The first of ``names`` present among the ``kind`` metrics, and its points."""
        table = getattr(self, kind)
        for name in names:
            if table.get(name):
                return name, table[name]
        return None, []

    def points(self, kind: str, names: Iterable[str], attributes: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return [p for p in self.find(kind, names)[1] if matches(p.get("attributes", {}), attributes)]

    def total(self, kind: str, names: Iterable[str], attributes: dict[str, Any] | None = None,
              field_name: str = "value") -> float | None:
        """Sum of ``field_name`` over the matching points, None when there are none."""
        values = [p.get(field_name) for p in self.points(kind, names, attributes)]
        values = [float(v) for v in values if v is not None]
        return sum(values) if values else None

    def unit(self, name: str | None) -> str:
        return self.units.get(name or "", "")


def find_snapshot_dir(given: str | None = None) -> str | None:
    """The directory to read (``~`` expanded): the argument, else the snapshot_dir setting
    (OTEL_MONITORING_SNAPSHOT_DIR), else the current directory when it holds snapshots, else the
    file directory (OTEL_MONITORING_FILE_DIR, ./otel-data: where `otel-monitoring demo` writes
    both) when that does; None when nothing names or holds one."""
    if given:
        return os.path.expanduser(given)
    from ..config import load_settings

    settings = load_settings()
    if settings.snapshot_dir:
        return settings.snapshot_dir
    for candidate in (".", settings.file_dir):
        if candidate and any(os.path.exists(os.path.join(candidate, name)) for name in (METRICS_FILE, ALERTS_FILE)):
            return candidate
    return None


def snapshot_dir(given: str | None = None) -> str:
    """find_snapshot_dir(), else the current directory (the views then say it holds nothing yet)."""
    return find_snapshot_dir(given) or "."


def usable_snapshot_dir(given: str | None = None) -> tuple[str | None, str | None]:
    """(directory, None) when find_snapshot_dir() names an existing directory, else (None, what is
    wrong and the fix): a view of nothing would look like an idle application."""
    directory = find_snapshot_dir(given)
    if directory is None:
        return None, ("no snapshot directory (neither . nor the file directory holds one); "
                      "pass --dir or set OTEL_MONITORING_SNAPSHOT_DIR")
    if not os.path.isdir(directory):
        return None, (f"{directory} is not a directory (is the application running with "
                      "OTEL_MONITORING_SNAPSHOT_DIR set?)")
    return directory, None


def _read_json(path: str) -> Any:
    """The document with its strings made terminal-safe (views/terminal.py): every view reads here."""
    with open(path, encoding="utf-8") as handle:
        return safe_tree(json.load(handle))


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _series(value: Any) -> dict[str, list[dict]]:
    """{metric: [point dicts with an attributes mapping]}, dropping anything else."""
    return {name: [p for p in points if isinstance(p, dict) and isinstance(p.get("attributes", {}), dict)]
            for name, points in _mapping(value).items() if isinstance(points, list)}


def use_since_start(histograms: dict[str, list[dict[str, Any]]]) -> None:
    """Put each histogram entry's since-start percentiles where the views read p50/p95/p99."""
    for points in histograms.values():
        for point in points:
            since = point.get("since_start")
            point.update({k: since.get(k) for k in ("p50", "p95", "p99")} if isinstance(since, dict) else {})


def read_snapshot_dir(directory: str, since_start: bool = False) -> Snapshot:
    """Read the snapshot directory. A missing or unreadable file is reported in ``problems``,
    never raised: the dashboard keeps running while the writer starts up. The percentiles are the
    recent window's (``percentile_window_s``), or with ``since_start`` those since the process started."""
    snapshot = Snapshot(source=directory)
    metrics_path = os.path.join(directory, METRICS_FILE)
    try:
        data = _read_json(metrics_path)
    except FileNotFoundError:
        snapshot.problems.append(f"no {METRICS_FILE} yet in {directory}")
    except (OSError, ValueError) as error:
        snapshot.problems.append(safe_text(f"cannot read {metrics_path}: {error}"))
    else:
        data = data if isinstance(data, dict) else {}
        stamp = data.get("timestamp_unix")
        snapshot.timestamp_unix = stamp if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) else None
        snapshot.service = _mapping(data.get("service"))
        snapshot.counters = _series(data.get("counters"))
        snapshot.gauges = _series(data.get("gauges"))
        snapshot.histograms = _series(data.get("histograms"))
        if since_start:
            use_since_start(snapshot.histograms)
        snapshot.units = _mapping(data.get("units"))
    alerts_path = os.path.join(directory, ALERTS_FILE)
    try:
        alerts = _read_json(alerts_path).get("alerts") or []
        # Anyone who can write the directory can edit the files: keep only well-formed entries.
        snapshot.alerts = [a for a in alerts if isinstance(a, dict)] if isinstance(alerts, list) else []
    except FileNotFoundError:
        pass  # no alert engine running: nothing to show
    except (OSError, ValueError, AttributeError) as error:
        snapshot.problems.append(safe_text(f"cannot read {alerts_path}: {error}"))
    return snapshot
