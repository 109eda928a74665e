"""Compact metric and alert history in ``history.sqlite`` of the snapshot directory.

The snapshot reader writes one row per series per history interval, the alert engine one row
per state change; ``top``, ``report`` and user scripts read it back through this class (see
docs/snapshots.md). SQLite in WAL mode lets readers in other processes query while the
application writes. Rows older than the retention are pruned by the writer.

Rollups keep a month small: samples older than a day are folded into one row per series and hour
(``samples_hourly``: value, rate and p50 averaged, p95 and p99 the hour's maximum, count and sum
the cumulative maximum), and reads see both tables as one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from typing import Any, Iterable, Mapping

__all__ = ["HISTORY_FILE", "HISTORY_FIELDS", "HistoryStore"]

HISTORY_FILE = "history.sqlite"

# Columns of a sample row; the `field` argument of series() is one of these.
HISTORY_FIELDS = ("value", "rate_per_s", "count", "sum", "p50", "p95", "p99")

ALERT_EVENTS = ("pending", "firing", "resolved", "acknowledged", "silenced", "escalated")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    metric TEXT NOT NULL,
    attributes TEXT NOT NULL,
    UNIQUE (metric, attributes)
);
CREATE TABLE IF NOT EXISTS samples (
    time REAL NOT NULL,
    series_id INTEGER NOT NULL,
    value REAL, rate_per_s REAL, count REAL, sum REAL, p50 REAL, p95 REAL, p99 REAL
);
CREATE INDEX IF NOT EXISTS samples_by_series ON samples (series_id, time);
CREATE INDEX IF NOT EXISTS samples_by_time ON samples (time);
CREATE TABLE IF NOT EXISTS samples_hourly (
    time REAL NOT NULL,
    series_id INTEGER NOT NULL,
    value REAL, rate_per_s REAL, count REAL, sum REAL, p50 REAL, p95 REAL, p99 REAL
);
CREATE INDEX IF NOT EXISTS samples_hourly_by_series ON samples_hourly (series_id, time);
CREATE INDEX IF NOT EXISTS samples_hourly_by_time ON samples_hourly (time);
CREATE TABLE IF NOT EXISTS alert_events (
    time REAL NOT NULL,
    alert_id TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    name TEXT NOT NULL,
    severity TEXT NOT NULL,
    event TEXT NOT NULL,
    value REAL,
    by_whom TEXT
);
CREATE INDEX IF NOT EXISTS alert_events_by_time ON alert_events (time);
"""

# How often the writer deletes rows older than the retention and rolls up old ones (seconds).
_PRUNE_EVERY_S = 600.0
ROLLUP_AFTER_S = 86400.0   # full resolution for the last day (the report's default window)
ROLLUP_BUCKET_S = 3600.0   # then one row per series and hour
# How each column of an hour's rows folds into one (rows at the bucket's middle).
_ROLLUP_COLUMNS = ("AVG(value), AVG(rate_per_s), MAX(count), MAX(sum), AVG(p50), MAX(p95), MAX(p99)")


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a history file written by an earlier version up to this schema."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(alert_events)")}
    if "by_whom" not in columns:
        conn.execute("ALTER TABLE alert_events ADD COLUMN by_whom TEXT")


def _canonical(attributes: Mapping[str, Any]) -> str:
    return json.dumps(dict(attributes), sort_keys=True, separators=(",", ":"), default=str)


class HistoryStore:
    """Reads (and, for the local writers, appends) the history of one snapshot directory.

    Read-only use is safe while another process writes: a missing file reads as empty history,
    and opening for reading never creates the file.
    """

    def __init__(self, directory: str, retention_s: float = 30 * 86400.0):
        self.directory = directory
        self.path = os.path.join(directory, HISTORY_FILE)
        self.retention_s = retention_s
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._writable = False
        self._pid = os.getpid()
        self._series_ids: dict[tuple[str, str], int] = {}
        self._last_prune = 0.0

    # --- connection ---

    def _connect(self, write: bool) -> sqlite3.Connection | None:
        if self._conn is not None and self._pid != os.getpid():
            # A connection must not cross fork: the child opens its own (the parent's stays open).
            self._conn, self._series_ids = None, {}
        if self._conn is not None and (self._writable or not write):
            return self._conn
        if not write and not os.path.exists(self.path):
            return None
        if self._conn is not None:
            self._conn.close()
        if write:
            os.makedirs(self.directory, exist_ok=True)
            conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
            _migrate(conn)
        else:
            conn = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False, isolation_level=None)
        self._conn, self._writable, self._pid = conn, write, os.getpid()
        return conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self._series_ids.clear()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- writing (the snapshot reader and the alert engine) ---

    def record_snapshot(self, snapshot: Mapping[str, Any]) -> None:
        """Append one row per series of a metrics_live.json document."""
        when = float(snapshot["timestamp_unix"])
        rows: list[tuple[str, Mapping[str, Any], dict[str, Any]]] = []
        for section in ("counters", "gauges", "histograms"):
            for metric, points in snapshot.get(section, {}).items():
                for point in points:
                    rows.append((metric, point.get("attributes", {}), point))
        with self._lock:
            conn = self._connect(write=True)
            assert conn is not None
            conn.execute("BEGIN")
            try:
                for metric, attributes, point in rows:
                    series_id = self._series_id(conn, metric, attributes)
                    conn.execute(
                        "INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?)",
                        (when, series_id, *(point.get(field) for field in HISTORY_FIELDS)),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._prune_if_due(conn, when)

    def record_alert_event(self, when: float, alert_id: str, rule_id: str, name: str, severity: str,
                           event: str, value: float | None = None, by: str | None = None) -> None:
        """One alert state change; ``by``: who acknowledged, for an ``acknowledged`` event."""
        if event not in ALERT_EVENTS:
            raise ValueError(f"unknown alert event {event!r}; expected one of {', '.join(ALERT_EVENTS)}")
        with self._lock:
            conn = self._connect(write=True)
            assert conn is not None
            conn.execute("INSERT INTO alert_events VALUES (?,?,?,?,?,?,?,?)",
                         (when, alert_id, rule_id, name, severity, event, value, by))

    def prune(self, now: float | None = None) -> None:
        """Delete rows older than the retention."""
        with self._lock:
            conn = self._connect(write=True)
            assert conn is not None
            self._prune(conn, time.time() if now is None else now)

    def _series_id(self, conn: sqlite3.Connection, metric: str, attributes: Mapping[str, Any]) -> int:
        key = (metric, _canonical(attributes))
        series_id = self._series_ids.get(key)
        if series_id is None:
            conn.execute("INSERT OR IGNORE INTO series (metric, attributes) VALUES (?, ?)", key)
            series_id = conn.execute("SELECT id FROM series WHERE metric = ? AND attributes = ?", key).fetchone()[0]
            self._series_ids[key] = series_id
        return series_id

    def _prune_if_due(self, conn: sqlite3.Connection, now: float) -> None:
        if now - self._last_prune >= _PRUNE_EVERY_S:
            self._prune(conn, now)

    def _prune(self, conn: sqlite3.Connection, now: float) -> None:
        cutoff = now - self.retention_s
        conn.execute("BEGIN")
        try:
            conn.execute("DELETE FROM samples WHERE time < ?", (cutoff,))
            conn.execute("DELETE FROM samples_hourly WHERE time < ?", (cutoff,))
            conn.execute("DELETE FROM alert_events WHERE time < ?", (cutoff,))
            # Whole hours only, so each hour is folded once.
            rollup_before = (now - ROLLUP_AFTER_S) // ROLLUP_BUCKET_S * ROLLUP_BUCKET_S
            bucket = f"CAST(time / {ROLLUP_BUCKET_S} AS INTEGER)"
            conn.execute(
                f"INSERT INTO samples_hourly SELECT {bucket} * {ROLLUP_BUCKET_S} + {ROLLUP_BUCKET_S / 2}, series_id, "
                f"{_ROLLUP_COLUMNS} FROM samples WHERE time < ? GROUP BY series_id, {bucket}", (rollup_before,))
            conn.execute("DELETE FROM samples WHERE time < ?", (rollup_before,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._last_prune = now

    # --- reading (docs/snapshots.md) ---

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            conn = self._connect(write=False)
            if conn is None:
                return []
            try:
                return conn.execute(sql, tuple(params)).fetchall()
            except sqlite3.OperationalError as error:
                if "no such table" in str(error):  # the writer has created the file but not the schema yet
                    return []
                raise

    def metric_names(self) -> list[str]:
        return [row[0] for row in self._query("SELECT DISTINCT metric FROM series ORDER BY metric")]

    def series(self, metric: str, field: str = "value", since: float | None = None, until: float | None = None,
               attributes: Mapping[str, Any] | None = None) -> list[tuple[float, dict, float]]:
        """(unix time, attributes, value) of ``metric`` oldest first; ``attributes`` keeps the series
        that carry all the given key/values. Rows where ``field`` is empty are left out."""
        if field not in HISTORY_FIELDS:
            raise ValueError(f"unknown history field {field!r}; expected one of {', '.join(HISTORY_FIELDS)}")
        tables = {row[0] for row in self._query("SELECT name FROM sqlite_master WHERE type = 'table'")}
        source = ("(SELECT * FROM samples_hourly UNION ALL SELECT * FROM samples)" if "samples_hourly" in tables
                  else "samples")  # a file of an earlier version, read only
        sql = (f"SELECT s.time, r.attributes, s.{field} FROM {source} s JOIN series r ON r.id = s.series_id "
               f"WHERE r.metric = ? AND s.{field} IS NOT NULL")
        params: list[Any] = [metric]
        if since is not None:
            sql += " AND s.time >= ?"
            params.append(since)
        if until is not None:
            sql += " AND s.time <= ?"
            params.append(until)
        sql += " ORDER BY s.time, r.id"
        wanted = {str(k): str(v) for k, v in (attributes or {}).items()}
        result = []
        for when, attrs_json, value in self._query(sql, params):
            attrs = json.loads(attrs_json)
            if any(k not in attrs or str(attrs[k]) != v for k, v in wanted.items()):
                continue
            result.append((when, attrs, value))
        return result

    def alert_events(self, since: float | None = None) -> list[dict]:
        """Alert state changes oldest first; ``by`` is who acknowledged (None for other events)."""
        columns = {row[1] for row in self._query("PRAGMA table_info(alert_events)")}
        by = "by_whom" if "by_whom" in columns else "NULL"  # a file of an earlier version, read only
        sql = f"SELECT time, alert_id, rule_id, name, severity, event, value, {by} FROM alert_events"
        params: list[Any] = []
        if since is not None:
            sql += " WHERE time >= ?"
            params.append(since)
        sql += " ORDER BY time, rowid"
        keys = ("time", "alert_id", "rule_id", "name", "severity", "event", "value", "by")
        return [dict(zip(keys, row)) for row in self._query(sql, params)]
