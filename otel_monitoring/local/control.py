"""Acknowledgements and silences requested from outside the engine (the CLI, another process).

They are kept in ``alert_control.json`` of the snapshot directory, which the engine reads at each
evaluation; the engine is the only writer of alerts.json and of the alert history, so requests
are recorded here and applied by the running process at its next collection.

    {"acknowledged": {"<alert id>": <unix time>}, "silenced": {"<alert or rule id>": <until unix time>}}
"""

from __future__ import annotations

import os
import threading
from .files import atomic_write_json, read_json

CONTROL_FILE = "alert_control.json"

_lock = threading.Lock()  # writers in this process; across processes the last replace wins


def read_control(directory: str) -> dict[str, dict[str, float]]:
    document = read_json(os.path.join(directory, CONTROL_FILE))
    if not isinstance(document, dict):
        document = {}
    result: dict[str, dict[str, float]] = {}
    for section in ("acknowledged", "silenced"):
        entries = document.get(section)
        result[section] = {str(k): float(v) for k, v in entries.items()
                           if isinstance(v, (int, float))} if isinstance(entries, dict) else {}
    return result


def _update(directory: str, section: str, key: str, value: float, now: float) -> None:
    with _lock:
        control = read_control(directory)
        control[section][key] = value
        # Forget silences that have ended and acknowledgements older than a week.
        control["silenced"] = {k: v for k, v in control["silenced"].items() if v > now}
        control["acknowledged"] = {k: v for k, v in control["acknowledged"].items() if v > now - 7 * 86400}
        atomic_write_json(os.path.join(directory, CONTROL_FILE), control)


def request_acknowledge(directory: str, alert_id: str, when: float) -> None:
    _update(directory, "acknowledged", alert_id, when, when)


def request_silence(directory: str, alert_or_rule_id: str, until: float, now: float) -> None:
    """Silence until ``until``; a time not after ``now`` lifts the silence."""
    with _lock:
        control = read_control(directory)
        control["silenced"] = {k: v for k, v in control["silenced"].items() if v > now and k != alert_or_rule_id}
        if until > now:
            control["silenced"][alert_or_rule_id] = until
        atomic_write_json(os.path.join(directory, CONTROL_FILE), control)
