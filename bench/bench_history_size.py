"""Size of the local history (history.sqlite) after N simulated days at the default settings: one
row per series per minute, 30 days of retention, rows older than a day rolled up to one per hour.

    ~/.cache/otel-monitoring/venv-py3.11/bin/python bench/bench_history_size.py --days 30 --series 100

The writer prunes and rolls up as it goes (every 10 simulated minutes), exactly as in a running
application; the file is measured at the end, with and without rollups for comparison.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from otel_monitoring.local import history
from otel_monitoring.local.history import HistoryStore


def snapshot(when: float, minute: int, series: int) -> dict:
    """``series`` series: 40% gauges, 40% counters, 20% histograms, values that move every minute."""
    gauges = int(series * 0.4)
    counters = int(series * 0.4)
    histograms = series - gauges - counters
    wave = (minute % 60) / 60
    return {
        "schema": 1, "timestamp_unix": when,
        "gauges": {f"gauge.{i}": [{"attributes": {"component": f"c{i % 7}"}, "value": wave + i}] for i in range(gauges)},
        "counters": {f"counter.{i}": [{"attributes": {"component": f"c{i % 7}"}, "value": float(minute * (i + 1)),
                                       "rate_per_s": (i + 1) / 60}] for i in range(counters)},
        "histograms": {f"histogram.{i}": [{"attributes": {"component": f"c{i % 7}"}, "count": minute * 10,
                                           "sum": minute * 1.5, "p50": 0.1 + wave / 10, "p95": 0.3 + wave / 5,
                                           "p99": 0.5 + wave / 4}] for i in range(histograms)},
    }


def run(days: int, series: int, rollup: bool) -> tuple[int, int, int, float]:
    directory = tempfile.mkdtemp(prefix="history-bench-")
    if not rollup:
        history.ROLLUP_AFTER_S = float("inf")
    store = HistoryStore(directory, retention_s=30 * 86400.0)
    start = 1_700_000_000.0
    began = time.perf_counter()
    for minute in range(days * 24 * 60):
        store.record_snapshot(snapshot(start + 60 * minute, minute, series))
    elapsed = time.perf_counter() - began
    store.prune(now=start + 60 * (days * 24 * 60 - 1))
    store.close()
    import sqlite3

    conn = sqlite3.connect(os.path.join(directory, history.HISTORY_FILE))
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    raw = conn.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
    hourly = conn.execute("SELECT COUNT(*) FROM samples_hourly").fetchone()[0]
    conn.close()
    size = sum(os.path.getsize(os.path.join(directory, name)) for name in os.listdir(directory))
    return size, raw, hourly, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--series", type=int, default=100)
    parser.add_argument("--no-rollup", action="store_true", help="measure without rollups (for comparison)")
    args = parser.parse_args()
    size, raw, hourly, elapsed = run(args.days, args.series, not args.no_rollup)
    print(f"{args.days} days x {args.series} series, one row a minute, "
          f"{'with' if not args.no_rollup else 'WITHOUT'} hourly rollups after a day:")
    print(f"  history.sqlite {size / 2**20:.1f} MiB ({raw} per-minute rows, {hourly} hourly rows); "
          f"written in {elapsed:.0f} s")


if __name__ == "__main__":
    main()
