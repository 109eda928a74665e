"""Compact metric and alert history in ``history.sqlite`` of the snapshot directory.

The snapshot reader writes one row per series per history interval, the alert engine one row
per state change; ``top``, ``report`` and user scripts read it back through this class (see
docs/snapshots.md). SQLite in WAL mode lets readers in other processes query while the
application writes. Rows older than the retention are pruned by the writer.

Several processes can share one directory (a bot and an API, the workers of one server): every
series belongs to the process that wrote it (``processes``: its ``service.instance.id``, service
name, pid, host and history interval), so their rows never mix. ``series()`` reads the directory's
total, combined the way ``metrics_live.json`` combines live processes (``processes.combine_rule``),
with one difference for cumulative columns (counter values, histogram counts and sums): a stopped
process keeps its last value in the total, so the total never goes down when a process ends and an
increase read from it is what all processes did. ``process_series()`` keeps the processes apart.

Rollups keep a month small: samples older than a day are folded into one row per series and hour
(``samples_hourly``: a gauge's value, rates and p50 averaged; a counter's value, histogram counts and
sums the hour's last, which for these cumulative columns is their maximum; p95 and p99 the hour's
maximum), and reads see both tables as one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from typing import Any, Iterable, Mapping

from .processes import MIN_STALE_S, STALE_INTERVALS, combine_rule, process_identity

__all__ = ["HISTORY_FILE", "HISTORY_FIELDS", "HistoryStore"]

HISTORY_FILE = "history.sqlite"

# Columns of a sample row; the `field` argument of series() is one of these.
HISTORY_FIELDS = ("value", "rate_per_s", "count", "sum", "p50", "p95", "p99")

ALERT_EVENTS = ("pending", "firing", "resolved", "acknowledged", "silenced", "escalated")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS processes (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE,
    service TEXT, instance_id TEXT, pid INTEGER, host TEXT,
    interval_s REAL
);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    metric TEXT NOT NULL,
    attributes TEXT NOT NULL,
    process_id INTEGER NOT NULL DEFAULT 0,
    kind TEXT,
    UNIQUE (metric, attributes, process_id)
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
    by_whom TEXT,
    process TEXT
);
CREATE INDEX IF NOT EXISTS alert_events_by_time ON alert_events (time);
"""

# How often the writer deletes rows older than the retention and rolls up old ones (seconds).
_PRUNE_EVERY_S = 600.0
ROLLUP_AFTER_S = 86400.0   # full resolution for the last day (the report's default window)
ROLLUP_BUCKET_S = 3600.0   # then one row per series and hour
# How each column of an hour's rows folds into one (rows at the bucket's middle). A counter's value
# is cumulative like a histogram's count: averaging it would understate what the hour ended at.
_ROLLUP_COLUMNS = ("CASE WHEN r.kind = 'counter' THEN MAX(s.value) ELSE AVG(s.value) END, AVG(s.rate_per_s), "
                   "MAX(s.count), MAX(s.sum), AVG(s.p50), MAX(s.p95), MAX(s.p99)")


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def _migrate(conn: sqlite3.Connection) -> None:
    """Bring a history file written by an earlier version up to this schema. Its rows belong to
    process 0 (one unnamed process: earlier versions did not tell processes apart)."""
    conn.execute("BEGIN IMMEDIATE")  # a second writer opening the same old file waits, then sees it done
    try:
        columns = _columns(conn, "alert_events")
        if "by_whom" not in columns:
            conn.execute("ALTER TABLE alert_events ADD COLUMN by_whom TEXT")
        if "process" not in columns:
            conn.execute("ALTER TABLE alert_events ADD COLUMN process TEXT")
        if "process_id" not in _columns(conn, "series"):
            # The old table is unique on (metric, attributes): rebuilt, keeping the series ids.
            conn.execute("ALTER TABLE series RENAME TO series_v1")
            conn.execute("CREATE TABLE series (id INTEGER PRIMARY KEY, metric TEXT NOT NULL, attributes TEXT NOT NULL, "
                         "process_id INTEGER NOT NULL DEFAULT 0, kind TEXT, UNIQUE (metric, attributes, process_id))")
            conn.execute("INSERT INTO series (id, metric, attributes) SELECT id, metric, attributes FROM series_v1")
            conn.execute("DROP TABLE series_v1")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


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
        self._series_ids: dict[tuple[str, str, int], int] = {}
        self._process_ids: dict[str, int] = {}
        self._last_prune = 0.0

    # --- connection ---

    def _connect(self, write: bool) -> sqlite3.Connection | None:
        if self._conn is not None and self._pid != os.getpid():
            # A connection must not cross fork: the child opens its own (the parent's stays open).
            self._conn, self._series_ids, self._process_ids = None, {}, {}
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
                self._process_ids.clear()

    def __enter__(self) -> HistoryStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # --- writing (the snapshot reader and the alert engine) ---

    def record_snapshot(self, snapshot: Mapping[str, Any], interval_s: float | None = None) -> None:
        """Append one row per series of a metrics_live.json document, as the rows of the process its
        ``service`` names. ``interval_s``: how often this process appends (its rows are at most that
        far apart; readers use it to tell a live process from a stopped one)."""
        when = float(snapshot["timestamp_unix"])
        rows: list[tuple[str, str, Mapping[str, Any], dict[str, Any]]] = []
        for section, kind in (("counters", "counter"), ("gauges", "gauge"), ("histograms", "histogram")):
            for metric, points in snapshot.get(section, {}).items():
                for point in points:
                    rows.append((metric, kind, point.get("attributes", {}), point))
        service = dict(snapshot.get("service") or {})
        with self._lock:
            conn = self._connect(write=True)
            assert conn is not None
            conn.execute("BEGIN")
            try:
                process_id = self._process_id(conn, service, interval_s or float(snapshot.get("interval_s") or 60.0))
                for metric, kind, attributes, point in rows:
                    series_id = self._series_id(conn, metric, attributes, process_id, kind)
                    conn.execute(
                        "INSERT INTO samples VALUES (?,?,?,?,?,?,?,?,?)",
                        (when, series_id, *(point.get(field) for field in HISTORY_FIELDS)),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                self._series_ids.clear()  # ids created inside the rolled-back transaction are gone
                self._process_ids.clear()
                raise
            self._prune_if_due(conn, when)

    def record_alert_event(self, when: float, alert_id: str, rule_id: str, name: str, severity: str,
                           event: str, value: float | None = None, by: str | None = None,
                           process: str | None = None) -> None:
        """One alert state change; ``by``: who acknowledged, for an ``acknowledged`` event;
        ``process``: which process saw it (its key in the directory)."""
        if event not in ALERT_EVENTS:
            raise ValueError(f"unknown alert event {event!r}; expected one of {', '.join(ALERT_EVENTS)}")
        with self._lock:
            conn = self._connect(write=True)
            assert conn is not None
            conn.execute("INSERT INTO alert_events VALUES (?,?,?,?,?,?,?,?,?)",
                         (when, alert_id, rule_id, name, severity, event, value, by, process))

    def prune(self, now: float | None = None) -> None:
        """Delete rows older than the retention."""
        with self._lock:
            conn = self._connect(write=True)
            assert conn is not None
            self._prune(conn, time.time() if now is None else now)

    def _process_id(self, conn: sqlite3.Connection, service: Mapping[str, Any], interval_s: float) -> int:
        key = process_identity(service)
        cached = self._process_ids.get(key)
        if cached is not None:
            return cached
        conn.execute("INSERT OR IGNORE INTO processes (key, service, instance_id, pid, host, interval_s) "
                     "VALUES (?,?,?,?,?,?)", (key, service.get("name"), service.get("instance_id"),
                                               service.get("pid"), service.get("host"), interval_s))
        process_id = conn.execute("SELECT id FROM processes WHERE key = ?", (key,)).fetchone()[0]
        self._process_ids[key] = process_id
        return process_id

    def _series_id(self, conn: sqlite3.Connection, metric: str, attributes: Mapping[str, Any],
                   process_id: int = 0, kind: str | None = None) -> int:
        key = (metric, _canonical(attributes), process_id)
        series_id = self._series_ids.get(key)
        if series_id is None:
            conn.execute("INSERT OR IGNORE INTO series (metric, attributes, process_id, kind) VALUES (?,?,?,?)",
                         (*key, kind))
            series_id = conn.execute("SELECT id FROM series WHERE metric = ? AND attributes = ? AND process_id = ?",
                                     key).fetchone()[0]
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
            bucket = f"CAST(s.time / {ROLLUP_BUCKET_S} AS INTEGER)"
            conn.execute(
                f"INSERT INTO samples_hourly SELECT {bucket} * {ROLLUP_BUCKET_S} + {ROLLUP_BUCKET_S / 2}, s.series_id, "
                f"{_ROLLUP_COLUMNS} FROM samples s JOIN series r ON r.id = s.series_id WHERE s.time < ? "
                f"GROUP BY s.series_id, {bucket}", (rollup_before,))
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

    def processes(self) -> list[dict[str, Any]]:
        """Every process that wrote rows: key, service, instance_id, pid, host, interval_s."""
        if "processes" not in self._tables():
            return []
        keys = ("key", "service", "instance_id", "pid", "host", "interval_s")
        return [dict(zip(keys, row)) for row in
                self._query(f"SELECT {', '.join(keys)} FROM processes ORDER BY id")]

    def process_series(self, metric: str, field: str = "value", since: float | None = None, until: float | None = None,
                       attributes: Mapping[str, Any] | None = None) -> list[tuple[float, str, dict, float]]:
        """(unix time, process key, attributes, value) of ``metric`` oldest first, each process'
        rows its own (key ``""``: rows of a file written before processes were told apart)."""
        return [(when, self._process_keys().get(process_id, ""), attrs, value) for when, process_id, _kind, attrs, value
                in self._rows(metric, field, since, until, attributes)]

    def series(self, metric: str, field: str = "value", since: float | None = None, until: float | None = None,
               attributes: Mapping[str, Any] | None = None) -> list[tuple[float, dict, float]]:
        """(unix time, attributes, value) of ``metric`` oldest first: the directory's total at each
        time a process wrote a row; ``attributes`` keeps the series that carry all the given
        key/values. Rows where ``field`` is empty are left out. One process: its rows as written."""
        rows = self._rows(metric, field, since, until, attributes)
        seeds = self._rows(metric, field, None, since, attributes, last_only=True) if since is not None else []
        if not rows:
            return []
        intervals = {p_id: interval for p_id, interval in self._process_intervals().items()}
        return _combine(metric, field, seeds, rows, intervals)

    def _tables(self) -> set[str]:
        return {row[0] for row in self._query("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def _process_keys(self) -> dict[int, str]:
        if "processes" not in self._tables():
            return {}
        return {row[0]: row[1] for row in self._query("SELECT id, key FROM processes")}

    def _process_intervals(self) -> dict[int, float]:
        if "processes" not in self._tables():
            return {}
        return {row[0]: float(row[1] or 60.0) for row in self._query("SELECT id, interval_s FROM processes")}

    def _rows(self, metric: str, field: str, since: float | None, until: float | None,
              attributes: Mapping[str, Any] | None, last_only: bool = False) -> list[tuple[float, int, str, dict, float]]:
        """(time, process id, kind, attributes, value) oldest first; ``last_only``: each series' last
        row before ``until`` (exclusive), the state a window opens with."""
        if field not in HISTORY_FIELDS:
            raise ValueError(f"unknown history field {field!r}; expected one of {', '.join(HISTORY_FIELDS)}")
        tables = self._tables()
        source = ("(SELECT * FROM samples_hourly UNION ALL SELECT * FROM samples)" if "samples_hourly" in tables
                  else "samples")  # a file of an earlier version, read only
        per_process = "process_id" in {row[1] for row in self._query("PRAGMA table_info(series)")}
        process, kind = ("r.process_id", "r.kind") if per_process else ("0", "NULL")
        when = "MAX(s.time)" if last_only else "s.time"
        sql = (f"SELECT {when}, {process}, {kind}, r.attributes, s.{field} FROM {source} s "
               f"JOIN series r ON r.id = s.series_id WHERE r.metric = ? AND s.{field} IS NOT NULL")
        params: list[Any] = [metric]
        if since is not None:
            sql += " AND s.time >= ?"
            params.append(since)
        if until is not None:
            sql += " AND s.time < ?" if last_only else " AND s.time <= ?"
            params.append(until)
        sql += " GROUP BY s.series_id" if last_only else " ORDER BY s.time, r.id"
        wanted = {str(k): str(v) for k, v in (attributes or {}).items()}
        result = []
        for row_time, process_id, row_kind, attrs_json, value in self._query(sql, params):
            attrs = json.loads(attrs_json)
            if any(k not in attrs or str(attrs[k]) != v for k, v in wanted.items()):
                continue
            result.append((row_time, process_id, row_kind, attrs, value))
        return result

    def alert_events(self, since: float | None = None) -> list[dict]:
        """Alert state changes oldest first; ``by`` is who acknowledged (None for other events);
        ``process`` the key of the process that recorded it (each event is recorded by one process
        of the directory: the one that notified it)."""
        columns = {row[1] for row in self._query("PRAGMA table_info(alert_events)")}
        by = "by_whom" if "by_whom" in columns else "NULL"  # a file of an earlier version, read only
        process = "process" if "process" in columns else "NULL"
        sql = f"SELECT time, alert_id, rule_id, name, severity, event, value, {by}, {process} FROM alert_events"
        params: list[Any] = []
        if since is not None:
            sql += " WHERE time >= ?"
            params.append(since)
        sql += " ORDER BY time, rowid"
        keys = ("time", "alert_id", "rule_id", "name", "severity", "event", "value", "by", "process")
        return [dict(zip(keys, row)) for row in self._query(sql, params)]


_CUMULATIVE = ("count", "sum")


def _cumulative(kind: str | None, field: str) -> bool:
    return field in _CUMULATIVE or (field == "value" and kind == "counter")


def _combine(metric: str, field: str, seeds: list[tuple], rows: list[tuple],
             intervals: Mapping[int, float]) -> list[tuple[float, dict, float]]:
    """The directory's total of each attribute set at each row time. Cumulative columns: the sum of
    every process' last value (a stopped process keeps counting what it did); the others: the
    processes live at that time (a row within max(30 s, three of its intervals)), combined by
    ``combine_rule`` (host gauges and budgets from the newest row, percentiles the highest, the
    rest summed)."""
    rule = combine_rule(metric, field)
    # attributes key -> process id -> (time, value)
    state: dict[str, dict[int, tuple[float, float]]] = {}
    for when, process_id, _kind, attrs, value in seeds:
        state.setdefault(_canonical(attrs), {})[process_id] = (when, value)
    out: list[tuple[float, dict, float]] = []
    index = 0
    while index < len(rows):
        now = rows[index][0]
        touched: dict[str, dict] = {}
        while index < len(rows) and rows[index][0] == now:  # every row written at this time
            _when, process_id, kind, attrs, value = rows[index]
            key = _canonical(attrs)
            state.setdefault(key, {})[process_id] = (now, value)
            touched.setdefault(key, (attrs, kind))
            index += 1
        for key, (attrs, kind) in touched.items():
            readings = state[key]
            if len(readings) == 1:
                out.append((now, attrs, next(iter(readings.values()))[1]))
                continue
            if _cumulative(kind, field) and rule != "newest":
                out.append((now, attrs, sum(value for _t, value in readings.values())))
                continue
            live = [(t, value) for process_id, (t, value) in readings.items()
                    if process_id == 0 or now - t <= max(MIN_STALE_S, STALE_INTERVALS * intervals.get(process_id, 60.0))]
            if rule == "newest":
                total = max(live)[1]
            elif rule == "max":
                total = max(value for _t, value in live)
            else:
                total = sum(value for _t, value in live)
            out.append((now, attrs, total))
    return out
