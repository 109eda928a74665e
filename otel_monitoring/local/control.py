"""Acknowledgements and silences requested from outside the engine (the CLI, another process).

They are kept in ``alert_control.json`` of the snapshot directory, which the engine reads at each
evaluation; the engine is the only writer of alerts.json and of the alert history, so requests
are recorded here and applied by the running process at its next collection.

    {"acknowledged": {"<alert id>": <unix time>}, "silenced": {"<alert or rule id>": <until unix time>},
     "acknowledged_by": {"<alert id>": "<who>"}}
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


MAX_NAME_LENGTH = 100


def read_acknowledgers(directory: str) -> dict[str, str]:
    """{alert id: who acknowledged it}, for the acknowledgements that named someone; entries that
    are not short printable names are left out (the name is shown in terminals and notifications)."""
    path = os.path.join(directory, CONTROL_FILE)
    if not os.path.exists(path):
        return {}
    try:
        document = load_file(path, "alert control file", fmt="json").data
    except UserFileError:
        return {}  # read_control reports the file once
    entries = document.get("acknowledged_by") if isinstance(document, dict) else None
    if not isinstance(entries, dict):
        return {}
    found: dict[str, str] = {}
    for key, value in entries.items():
        if (isinstance(value, str) and value.isprintable() and 0 < len(value) <= MAX_NAME_LENGTH
                and len(key) <= MAX_ID_LENGTH and len(found) < MAX_ENTRIES):
            found[key] = value
    return found


def _update(directory: str, section: str, key: str, value: float, now: float, by: str | None = None) -> None:
    with _lock:
        control: dict = read_control(directory)
        acknowledgers = read_acknowledgers(directory)
        control[section][key] = value
        if section == "acknowledged":
            if by:
                acknowledgers[key] = by
            else:
                acknowledgers.pop(key, None)
        # Forget silences that have ended and acknowledgements older than a week.
        control["silenced"] = {k: v for k, v in control["silenced"].items() if v > now}
        control["acknowledged"] = {k: v for k, v in control["acknowledged"].items() if v > now - 7 * 86400}
        acknowledgers = {k: v for k, v in acknowledgers.items() if k in control["acknowledged"]}
        if acknowledgers:
            control["acknowledged_by"] = acknowledgers
        atomic_write_json(os.path.join(directory, CONTROL_FILE), control)


def request_acknowledge(directory: str, alert_id: str, when: float, by: str | None = None) -> None:
    """Acknowledge ``alert_id`` at ``when``; ``by`` names who did (recorded with the alert and its history)."""
    _update(directory, "acknowledged", alert_id, when, when, by)


def request_silence(directory: str, alert_or_rule_id: str, until: float, now: float) -> None:
    """Silence until ``until``; a time not after ``now`` lifts the silence."""
    with _lock:
        control: dict = read_control(directory)
        acknowledgers = read_acknowledgers(directory)
        if acknowledgers:
            control["acknowledged_by"] = acknowledgers
        control["silenced"] = {k: v for k, v in control["silenced"].items() if v > now and k != alert_or_rule_id}
        if until > now:
            control["silenced"][alert_or_rule_id] = until
        atomic_write_json(os.path.join(directory, CONTROL_FILE), control)
