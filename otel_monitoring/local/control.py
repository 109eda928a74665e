"""Acknowledgements and silences requested from outside the engine (the CLI, another process).

They are kept in ``alert_control.json`` of the snapshot directory, which the engine reads at each
evaluation; the engine is the only writer of alerts.json and of the alert history, so requests
are recorded here and applied by the running process at its next collection.

    {"acknowledged": {"<alert id>": <unix time>}, "silenced": {"<alert or rule id>": <until unix time>}}
"""

from __future__ import annotations

import logging
import math
import os
import threading

from ..userfiles import UserFileError, load_file
from .files import atomic_write_json

CONTROL_FILE = "alert_control.json"
# Times outside 1970-2200 are not acknowledgements or silences anyone asked for; they are dropped
# (an infinite or far-future time would overflow every date conversion downstream).
MAX_TIME = 7258118400.0
MAX_ENTRIES = 10_000
MAX_ID_LENGTH = 500

_logger = logging.getLogger("otel_monitoring.local")
_warned: set[str] = set()

_lock = threading.Lock()  # writers in this process; across processes the last replace wins


def _warn_once(message: str) -> None:
    if message not in _warned and len(_warned) < 100:
        _warned.add(message)
        _logger.warning("otel-monitoring: %s The bad entries are ignored; the next `otel-monitoring alerts "
                        "ack` or `silence` rewrites the file without them.", message)


def _time(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) and 0 <= number <= MAX_TIME else None


def read_control(directory: str) -> dict[str, dict[str, float]]:
    """The valid acknowledgements and silences of the control file; a missing, corrupt or hostile file
    gives what is valid in it (possibly nothing), never an error."""
    path = os.path.join(directory, CONTROL_FILE)
    result: dict[str, dict[str, float]] = {"acknowledged": {}, "silenced": {}}
    if not os.path.exists(path):
        return result
    try:
        document = load_file(path, "alert control file", fmt="json").data
    except UserFileError as problem:
        _warn_once(str(problem))
        return result
    if not isinstance(document, dict):
        _warn_once(f"alert control file {path}: expected a JSON object with 'acknowledged' and 'silenced'.")
        return result
    dropped = 0
    for section in ("acknowledged", "silenced"):
        entries = document.get(section)
        if not isinstance(entries, dict):
            continue
        for key, value in entries.items():
            when = _time(value)
            if when is None or len(key) > MAX_ID_LENGTH or len(result[section]) >= MAX_ENTRIES:
                dropped += 1
                continue
            result[section][key] = when
    if dropped:
        _warn_once(f"alert control file {path}: {dropped} entr{'y' if dropped == 1 else 'ies'} with a time that is "
                   "not a finite Unix time between 1970 and 2200 (or beyond the entry limit).")
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
