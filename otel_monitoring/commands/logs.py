"""``otel-monitoring logs [QUERY] [--service S] [--level L] [--trace ID] [--since 1h]``: search the
stack's log store (VictoriaLogs) and print the matching records with their trace ids.

    otel-monitoring logs --level error --since 24h         # errors and worse of the last day
    otel-monitoring logs --trace 4bf92f3577b34da6a3ce929d0e0e4736   # every record of one trace
    otel-monitoring logs --category timeouts --service api   # the log analyzer's saved queries
    otel-monitoring logs 'exception.type:ZeroDivisionError'  # QUERY is LogsQL (words match the message)
"""

from __future__ import annotations

import argparse
import json
import sys

from .. import names

URL_ENV = "OTEL_MONITORING_LOGS_URL"


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..stack.runner import add_state_dir_argument
    from ..stack.victorialogs import CATEGORIES

    parser = subparsers.add_parser(
        "logs", help="search the stack's logs (VictoriaLogs): by text, service, level, logger, trace, time",
        description="Prints the newest log records (--limit) of the stack's log store that match every filter "
                    "given, in time order, with their trace ids (open one with `otel-monitoring traces TRACE_ID`).")
    parser.add_argument("query", nargs="?", default="",
                        help="LogsQL: words match the message, field:value a field (e.g. 'refused exchange')")
    parser.add_argument("--service", help=names.SERVICE_NAME)
    parser.add_argument("--level", help="this severity and above: trace, debug, info, warn, error, fatal")
    parser.add_argument("--logger", help="logger name (the record's instrumentation scope)")
    parser.add_argument("--trace", dest="trace_id", metavar="ID", help="trace id (32 hex digits)")
    parser.add_argument("--since", default="1h", help="how far back: 15m, 1h, 7d (default %(default)s)")
    parser.add_argument("--category", choices=tuple(CATEGORIES),
                        help="a saved query of the log analyzer: " + "; ".join(
                            f"{name}: {c['description'][:-1].lower()}" for name, c in CATEGORIES.items()))
    parser.add_argument("--limit", type=int, default=200,
                        help="the newest this many records, shown oldest first like tail (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="one JSON object per record, every field")
    parser.add_argument("--url", default=None,
                        help=f"VictoriaLogs base URL (default ${URL_ENV}, else the running stack's, else "
                             "http://127.0.0.1:9428)")
    add_state_dir_argument(parser)
    parser.set_defaults(func=run)


def _url(args: argparse.Namespace) -> str:
    from ..stack.runner import running_stack_url
    from ..stack.victorialogs import DEFAULT_URL

    from ..config import load_settings

    return args.url or load_settings().logs_url or running_stack_url("victorialogs", args.state_dir) or DEFAULT_URL


def run(args: argparse.Namespace) -> int:
    from ..stack.victorialogs import LogsError, logsql, query

    try:
        expression = logsql(args.query, service=args.service, level=args.level, trace_id=args.trace_id,
                            since=args.since, category=args.category, logger=args.logger, newest=max(1, args.limit))
    except ValueError as error:
        print(f"otel-monitoring logs: {error}", file=sys.stderr)
        return 2
    url = _url(args)
    try:
        # The newest N come newest first: shown in time order, as `tail -n N` shows a file's end.
        records = list(reversed(list(query(url, expression, limit=max(1, args.limit)))))
    except LogsError as error:
        print(f"otel-monitoring logs: {error}", file=sys.stderr)
        return 1
    if args.json:
        for record in records:
            print(json.dumps(record, sort_keys=True))
        return 0
    if not records:
        print(f"No log records match ({expression}).", file=sys.stderr)
        return 0
    for record in records:
        print(format_record(record))
    if len(records) >= args.limit:
        print(f"(the newest {args.limit} records; older ones match too: narrow the filters or raise --limit)",
              file=sys.stderr)
    return 0


def format_record(record: dict) -> str:
    """``2026-11-30T15:08:06.671Z ERROR svc-a [trace ab70...b0] connection refused`` plus the exception."""
    when = str(record.get("_time", ""))
    if len(when) > 24 and when.endswith("Z"):
        when = when[:23] + "Z"  # milliseconds are enough to read
    level = record.get("severity_text") or "-"
    trace = f" trace={record['trace_id']}" if record.get("trace_id") else ""
    line = f"{when} {level:<5} {record.get(names.SERVICE_NAME, '-')}{trace}  {record.get('_msg', '')}"
    if record.get(names.EXCEPTION_TYPE):
        line += f"  [{record[names.EXCEPTION_TYPE]}: {record.get(names.EXCEPTION_MESSAGE, '')}]"
    return line
