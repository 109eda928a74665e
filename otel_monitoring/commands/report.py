"""``otel-monitoring report --html FILE``: the snapshot directory's status, 24-hour trends, latency
per operation, cost and the 7-day alert history as one self-contained HTML file (for cron, e-mail,
or opening on a phone). Gathering is views/report_data.py, the page views/html_report.py."""

from __future__ import annotations

import argparse
import os
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report", help="write a self-contained HTML report of a snapshot directory",
        description="Write one self-contained HTML file (no network needed to view it) from the snapshot "
                    "directory and its history: status cards, 24-hour trends, latency per operation, cost "
                    "and budget, and the alert history of the last 7 days.")
    parser.add_argument("--html", metavar="FILE", required=True, help="the HTML file to write ('-' for stdout)")
    parser.add_argument("--dir", metavar="DIR",
                        help="snapshot directory (default: $OTEL_MONITORING_SNAPSHOT_DIR, else the current directory)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..views.html_report import render_html
    from ..views.report_data import gather_report
    from ..views.snapshot import snapshot_dir

    directory = snapshot_dir(args.dir)
    if not os.path.isdir(directory):
        print(f"otel-monitoring report: {directory} is not a directory (set --dir or OTEL_MONITORING_SNAPSHOT_DIR)",
              file=sys.stderr)
        return 2
    data = gather_report(directory)
    page = render_html(data)
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
