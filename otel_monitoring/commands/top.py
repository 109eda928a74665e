"""``otel-monitoring top``: the live terminal dashboard over a snapshot directory or a running
Prometheus. Reading is views/snapshot.py and views/prometheus.py, the model views/overview.py, the
frame views/dashboard.py; this module only loops, sizes the frame to the terminal and reads keys."""

from __future__ import annotations

import argparse
import os
import select
import sys
import termios
import time
import tty
from contextlib import contextmanager
from typing import Callable, Iterator

from ..views.snapshot import Snapshot, read_snapshot_dir, snapshot_dir, usable_snapshot_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "top", help="live terminal dashboard of a snapshot directory or a Prometheus",
        description="Live terminal dashboard: system gauges, RED per operation, cost and budgets, "
                    "trading and RAG KPIs, active alerts. Press q (or Ctrl-C) to quit.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--dir", metavar="DIR",
                        help="snapshot directory (default: $OTEL_MONITORING_SNAPSHOT_DIR, else the current directory)")
    source.add_argument("--prometheus", metavar="URL",
                        help="read a running Prometheus instead, e.g. http://127.0.0.1:9090")
    parser.add_argument("--service", help="with --prometheus: only this service (job label); "
                                           "otherwise all services together")
    parser.add_argument("--instance", help="with --prometheus: only this instance (service.instance.id); "
                                            "otherwise gauges averaged and counters summed over instances")
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between refreshes (default 2)")
    parser.add_argument("--since-start", action="store_true",
                        help="percentiles since each process started (default: the recent window, "
                             "OTEL_MONITORING_PERCENTILE_WINDOW in snapshots, 5m in Prometheus)")
    parser.add_argument("--once", action="store_true", help="print one frame and exit (for scripts and cron)")
    parser.add_argument("--width", type=int, help="frame width for --once (default: the terminal's, else 80)")
    parser.set_defaults(func=run)


def snapshot_reader(args: argparse.Namespace, directory: str | None = None) -> Callable[[], Snapshot]:
    if args.prometheus:
        from ..views.prometheus import PrometheusSource

        return PrometheusSource(args.prometheus, service=args.service, instance=args.instance,
                                since_start=getattr(args, "since_start", False)).read
    directory = directory or snapshot_dir(args.dir)
    return lambda: read_snapshot_dir(directory, since_start=getattr(args, "since_start", False))


@contextmanager
def keypresses() -> Iterator[Callable[[float], str]]:
    """``wait(seconds)`` -> the key pressed within that time, or "". Cbreak mode on a terminal,
    so a single q quits without Enter (over SSH too); plain sleeping otherwise."""
    stdin = sys.stdin
    if not stdin.isatty():
        yield lambda seconds: (time.sleep(seconds), "")[1]
        return
    fd = stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)

    def wait(seconds: float) -> str:
        ready, _, _ = select.select([fd], [], [], seconds)
        return os.read(fd, 32).decode(errors="replace") if ready else ""

    try:
        yield wait
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.live import Live

    from ..views.dashboard import render_frame
    from ..views.overview import build_overview

    directory = None
    if not args.prometheus:
        directory, problem = usable_snapshot_dir(args.dir)
        if problem:
            print(f"otel-monitoring top: {problem}", file=sys.stderr)
            return 2
    read = snapshot_reader(args, directory)
    if args.once:
        width = args.width or (os.get_terminal_size().columns if sys.stdout.isatty() else 80)
        console = Console(width=width, highlight=False)
        snapshot = read()
        console.print(render_frame(build_overview(snapshot), width=width, height=None))
        return 0 if snapshot.timestamp_unix else 1

    if args.interval <= 0:
        print("otel-monitoring top: --interval must be positive", file=sys.stderr)
        return 2
    console = Console(highlight=False)
    hint = f"q quit · every {args.interval:g}s · {args.prometheus or directory}"
    previous: Snapshot | None = None   # the last reading with another timestamp: rates between the two
    last: Snapshot | None = None
    if not console.is_terminal:  # piped or logged: one full frame per refresh, like top's batch mode
        previous_frame: Snapshot | None = None
        while True:
            snapshot = read()
            console.print(render_frame(build_overview(snapshot, previous_frame), width=console.width, height=None))
            console.print()
            previous_frame = snapshot
            time.sleep(args.interval)
    with keypresses() as wait, Live(console=console, screen=True, auto_refresh=False,
                                    redirect_stdout=False, redirect_stderr=False) as live:
        while True:
            snapshot = read()
            if last is not None and last.timestamp_unix != snapshot.timestamp_unix:
                previous = last
            last = snapshot
            width, height = console.size
            live.update(render_frame(build_overview(snapshot, previous), width=width, height=height, hint=hint),
                        refresh=True)
            if wait(args.interval).lower().startswith("q"):
                return 0
