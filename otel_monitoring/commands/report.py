"""``otel-monitoring report --html FILE [--window 1h|24h|7d|30d] [--refresh SECONDS]``: the snapshot
directory's status, trends over the window, latency per operation, cost and the alert history as one
self-contained HTML file (for cron, e-mail, or opening on a phone). Gathering is
views/report_data.py, the page views/html_report.py."""

from __future__ import annotations

import argparse
import os
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write a self-contained HTML report of a snapshot directory",
        description="Write one self-contained HTML file (no network needed to view it) from the snapshot "
                    "directory and its history: status cards, trends over the window (24 hours by default), "
                    "latency per operation, cost and budget, and the alert history (7 days, or the window if longer).")
    parser.add_argument("--html", metavar="FILE", required=True, help="the HTML file to write ('-' for stdout)")
    parser.add_argument("--dir", metavar="DIR",
                        help="snapshot directory (default: $OTEL_MONITORING_SNAPSHOT_DIR, else the current directory)")
    parser.add_argument("--window", choices=("1h", "24h", "7d", "30d"), default="24h",
                        help="span of the trends, cost and alert history (default %(default)s; 30d needs "
                             "OTEL_MONITORING_HISTORY_RETENTION of 30d, the default)")
    parser.add_argument("--refresh", type=int, metavar="SECONDS", default=None,
                        help="make the page reload itself every SECONDS (e.g. 300, with a cron job or a loop "
                             "rewriting the file)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..views.html_report import render_html
    from ..views.report_data import WINDOWS, gather_report
    from ..views.snapshot import usable_snapshot_dir

    directory, problem = usable_snapshot_dir(args.dir)
    if problem:
        print(f"otel-monitoring report: {problem}", file=sys.stderr)
        return 2
    if args.refresh is not None and args.refresh < 1:
        print("otel-monitoring report: --refresh takes a number of seconds of at least 1 (e.g. 300)", file=sys.stderr)
        return 2
    data = gather_report(directory, window_s=WINDOWS[args.window])
    page = render_html(data, refresh_s=args.refresh)
    if args.html == "-":
        sys.stdout.write(page)
    else:
        temporary = f"{args.html}.tmp"
        with open(temporary, "w", encoding="utf-8") as handle:
            handle.write(page)
        os.replace(temporary, args.html)  # a browser or mailer never picks up half a report
        print(f"wrote {args.html} ({len(page.encode()) // 1024} KiB)", file=sys.stderr)
    for problem in data.problems:
        print(f"note: {problem}", file=sys.stderr)
    return 0
