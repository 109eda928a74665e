"""``otel-monitoring alerts``: the local alert state of a snapshot directory, and the rules' export.

    otel-monitoring alerts list                     # pending, firing and just resolved alerts
    otel-monitoring alerts ack high_cpu --by maria  # acknowledge (stops escalation), recording who
    otel-monitoring alerts test [--channel slack]   # a test notification through each configured channel
    otel-monitoring alerts silence high_cpu --for 1h  # suppress notifications (an alert or a rule id)
    otel-monitoring alerts check [--rules FILE]     # validate a rules file
    otel-monitoring alerts export --prometheus FILE # the same rules as Prometheus alerting rules
    otel-monitoring alerts export --alertmanager FILE  # the channels as an Alertmanager configuration

ack and silence are requests the running process applies at its next collection (they are kept
in alert_control.json, see otel_monitoring/local/control.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Any

from ..views.formatting import alert_value

SNAPSHOT_DIR_ENV = "OTEL_MONITORING_SNAPSHOT_DIR"
RULES_ENV = "OTEL_MONITORING_ALERT_RULES"


def register(subparsers: argparse._SubParsersAction) -> None:
    from ..stack.runner import add_state_dir_argument

    parser = subparsers.add_parser("alerts", help="list, acknowledge and silence local alerts; export the rules")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")

    def with_dir(p: argparse.ArgumentParser) -> None:
        p.add_argument("--dir", default=None, help=f"snapshot directory (default ${SNAPSHOT_DIR_ENV})")

    listing = actions.add_parser("list", help="the alerts of the snapshot directory")
    with_dir(listing)
    listing.add_argument("--json", action="store_true", help="print alerts.json's alerts as JSON")
    listing.add_argument("--history", metavar="DURATION", default=None,
                         help="also print the alert events of the last DURATION (e.g. 1h, 7d)")
    listing.set_defaults(func=run_list)

    ack = actions.add_parser("ack", help="acknowledge an active alert (it stops escalating)")
    ack.add_argument("id", help="alert id, as `alerts list` shows it")
    ack.add_argument("--by", metavar="NAME", default=None,
                     help="who acknowledges (default: $USER); shown by `alerts list` and kept in the history")
    with_dir(ack)
    ack.set_defaults(func=run_ack)

    silence = actions.add_parser("silence", help="suppress the notifications of an alert or of a rule's alerts")
    silence.add_argument("id", help="alert id or rule id")
    silence.add_argument("--for", dest="duration", required=True, help="how long: 30m, 1h, 1d (0 lifts the silence)")
    with_dir(silence)
    silence.set_defaults(func=run_silence)

    test = actions.add_parser("test", help="send a test notification through each configured channel (locally, and "
                                           "through Alertmanager when the stack runs)")
    test.add_argument("--channel", choices=("log", "webhook", "slack", "discord", "email"), default=None,
                      help="only this channel (default: every configured one)")
    test.add_argument("--alertmanager", metavar="URL", default=None,
                      help="Alertmanager to send through too (default: the one `otel-monitoring stack up` runs, "
                           "if it runs; 'none' for local channels only)")
    add_state_dir_argument(test)
    test.set_defaults(func=run_test)

    check = actions.add_parser("check", help="validate an alert rules file")
    check.add_argument("--rules", default=None, help=f"rules file (default ${RULES_ENV} or the packaged rules)")
    check.set_defaults(func=run_check)

    export = actions.add_parser("export", help="write the rules as Prometheus alerting rules, the channels as an "
                                               "Alertmanager configuration")
    export.add_argument("--prometheus", metavar="FILE", help="alerting rules file to write ('-' for stdout)")
    export.add_argument("--alertmanager", metavar="FILE",
                        help="Alertmanager configuration to write from the OTEL_MONITORING_ALERT_* settings and the "
                             "rules' cooldowns ('-' for stdout)")
    export.add_argument("--rules", default=None, help=f"rules file (default ${RULES_ENV} or the packaged rules)")
    export.set_defaults(func=run_export)

    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _settings() -> Any:
    """The settings (the only reader of the environment): the same paths, ``~`` expanded, as ``top``."""
    from ..config import load_settings

    return load_settings()


def _directory(args: argparse.Namespace) -> str | None:
    from ..views.snapshot import usable_snapshot_dir

    directory, problem = usable_snapshot_dir(args.dir)
    if problem:
        print(f"otel-monitoring alerts: {problem}", file=sys.stderr)
    return directory


def _rules_source(args: argparse.Namespace) -> str:
    return getattr(args, "rules", None) or _settings().alert_rules


def _alerts(directory: str) -> tuple[list[dict[str, Any]], dict[str, dict[str, float]]]:
    from ..local import ALERTS_FILE
    from ..local.control import read_control
    from ..local.files import read_json

    from ..views.terminal import safe_tree

    document = read_json(os.path.join(directory, ALERTS_FILE))
    alerts = document.get("alerts") if isinstance(document, dict) else None
    # alerts.json is ours, but anyone who can write the directory can edit it: keep well-formed
    # alerts only, with their strings terminal-safe.
    alerts = [a for a in alerts if isinstance(a, dict) and isinstance(a.get("id"), str)] if isinstance(alerts, list) else []
    return safe_tree(alerts), read_control(directory)


def _since_unix(alert: dict[str, Any]) -> float:
    from datetime import datetime

    try:
        return datetime.fromisoformat(alert["since"].replace("Z", "+00:00")).timestamp()
    except (KeyError, ValueError, AttributeError):
        return 0.0


def run_list(args: argparse.Namespace) -> int:
    directory = _directory(args)
    if directory is None:
        return 2
    from ..local.control import read_acknowledgers

    if _never_written(directory):
        # As top says it: an empty list would read as "all clear" for a directory nothing writes to.
        from ..local.snapshot import LIVE_FILE

        print(f"otel-monitoring alerts: no {LIVE_FILE} yet in {directory}: no process has written there yet",
              file=sys.stderr)
        return 1
    alerts, control = _alerts(directory)
    acknowledgers = read_acknowledgers(directory)
    now = time.time()
    _warn_if_stale(directory, now)
    for alert in alerts:  # requests not yet applied by the process show as well
        acked = control["acknowledged"].get(alert["id"])
        if acked is not None and acked >= _since_unix(alert):
            alert["acknowledged"] = True
            alert["acknowledged_by"] = alert.get("acknowledged_by") or acknowledgers.get(alert["id"])
        until = max(control["silenced"].get(alert["id"], 0.0), control["silenced"].get(str(alert.get("rule_id")), 0.0))
        if until > now and not alert.get("silenced_until"):
            from ..local.snapshot import iso_time

            alert["silenced_until"] = iso_time(until)
    if args.json:
        print(json.dumps(alerts, indent=2))
    elif not alerts:
        print("No pending or firing alerts.")
    else:
        print(f"{'STATE':<9} {'SEVERITY':<10} {'ID':<40} {'VALUE':>10} {'THRESHOLD':>10}  SINCE                     NOTES")
        for alert in alerts:
            value, threshold = alert_value(alert), alert_value(alert, "threshold")
            notes = []
            if alert.get("acknowledged"):
                notes.append(f"acknowledged by {alert['acknowledged_by']}" if alert.get("acknowledged_by")
                             else "acknowledged")
            if alert.get("silenced_until"):
                notes.append(f"silenced until {alert['silenced_until']}")
            if len(alert.get("processes") or ()) > 1:  # several processes share the directory
                notes.append(f"seen by {len(alert['processes'])} processes")
            print(f"{str(alert.get('state')):<9} {str(alert.get('severity')):<10} {alert['id']:<40} {value:>10} "
                  f"{threshold:>10}  {str(alert.get('since')):<25} {', '.join(notes)}")
    if args.history:
        from ..config import parse_duration
        from ..local.history import HistoryStore
        from ..local.snapshot import iso_time

        from ..local.rules import with_rule_units

        events = with_rule_units(HistoryStore(directory).alert_events(since=now - parse_duration(args.history)),
                                 _rules_source(args))
        print(f"\nAlert events of the last {args.history}:" if events else f"\nNo alert events in the last {args.history}.")
        for event in events:
            value = "" if event["value"] is None else f" value {alert_value(event)}"
            by = f" by {event['by']}" if event.get("by") else ""
            seen = f"  (process {event['process']})" if event.get("process") else ""
            print(f"  {iso_time(event['time'])}  {event['event']:<12} {event['severity']:<9} {event['alert_id']}{value}{by}"
                  f"{seen}")
    return 0


def _never_written(directory: str) -> bool:
    """No snapshot, alert evaluation or history in the directory: no process has run with it yet."""
    from ..local import ALERTS_FILE
    from ..local.history import HISTORY_FILE
    from ..local.snapshot import LIVE_FILE

    return not any(os.path.exists(os.path.join(directory, name)) for name in (LIVE_FILE, ALERTS_FILE, HISTORY_FILE))


def _warn_if_stale(directory: str, now: float) -> None:
    """Say so when the snapshots have stopped: the alerts shown are then those of a process gone."""
    from ..local.files import read_json
    from ..local.snapshot import LIVE_FILE

    live = read_json(os.path.join(directory, LIVE_FILE))
    live = live if isinstance(live, dict) else {}
    written, interval = live.get("timestamp_unix"), live.get("interval_s")
    interval = interval if isinstance(interval, (int, float)) and math.isfinite(interval) else 5.0
    if isinstance(written, (int, float)) and math.isfinite(written) and now - written > max(60.0, 3 * interval):
        print(f"note: the last snapshot is {now - written:.0f}s old; is the application running?", file=sys.stderr)


def run_ack(args: argparse.Namespace) -> int:
    from ..local.control import request_acknowledge

    directory = _directory(args)
    if directory is None:
        return 2
    alerts, _ = _alerts(directory)
    active = [a["id"] for a in alerts if a.get("state") in ("pending", "firing")]
    if args.id not in active:
        print(f"otel-monitoring alerts: no active alert {args.id!r}; active: {', '.join(active) or 'none'}",
              file=sys.stderr)
        return 1
    from ..local.control import MAX_NAME_LENGTH

    by = (args.by if args.by is not None else _login_name()).strip() or None
    if by is not None and (not by.isprintable() or len(by) > MAX_NAME_LENGTH):
        print(f"otel-monitoring alerts ack: --by takes a name of printable characters, at most {MAX_NAME_LENGTH} "
              "(e.g. --by maria)", file=sys.stderr)
        return 2
    request_acknowledge(directory, args.id, time.time(), by)
    print(f"Acknowledged {args.id}{' by ' + by if by else ''}; the application applies it at its next snapshot.")
    return 0


def run_silence(args: argparse.Namespace) -> int:
    from ..config import parse_duration
    from ..local.control import request_silence
    from ..local.snapshot import iso_time

    directory = _directory(args)
    if directory is None:
        return 2
    try:
        seconds = parse_duration(args.duration)
    except ValueError as error:
        print(f"otel-monitoring alerts silence: --for {error}", file=sys.stderr)
        return 2
    alerts, _ = _alerts(directory)
    known = {a["id"] for a in alerts} | {str(a.get("rule_id")) for a in alerts} | _rule_ids()
    if args.id not in known:
        print(f"otel-monitoring alerts: {args.id!r} is neither an alert nor a rule id; known: "
              f"{', '.join(sorted(known)) or 'none'}", file=sys.stderr)
        return 1
    now = time.time()
    request_silence(directory, args.id, now + seconds, now)
    print(f"Silenced {args.id} until {iso_time(now + seconds)}." if seconds else f"Lifted the silence of {args.id}.")
    return 0


def _login_name() -> str:
    """Who runs the command, as the operating system names them ("" when it cannot tell)."""
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name (no USER/LOGNAME and no passwd entry) is not an error here
        return ""


def _rule_ids() -> set[str]:
    from ..local.rules import RuleError, load_rules

    try:
        return {rule.id for rule in load_rules(_settings().alert_rules, strict=False).rules}
    except RuleError:
        return set()


def run_check(args: argparse.Namespace) -> int:
    from ..local.rules import RuleError, load_rules

    try:
        ruleset = load_rules(_rules_source(args), strict=False)
    except RuleError as error:
        print(f"otel-monitoring alerts check: {error}", file=sys.stderr)
        return 1
    for message in ruleset.errors:
        print(message, file=sys.stderr)
    print(f"{ruleset.source}: {len(ruleset.rules)} rule(s) valid, {len(ruleset.errors)} invalid.")
    return 1 if ruleset.errors else 0


def run_export(args: argparse.Namespace) -> int:
    from ..config import ConfigError, load_settings
    from ..local.files import atomic_write_text
    from ..local.prometheus import render_prometheus_rules
    from ..local.rules import RuleError, load_rules

    if not args.prometheus and not args.alertmanager:
        print("otel-monitoring alerts export: name an output, --prometheus FILE and/or --alertmanager FILE",
              file=sys.stderr)
        return 2
    try:
        ruleset = load_rules(_rules_source(args), strict=True)
    except RuleError as error:
        print(f"otel-monitoring alerts export: {error}", file=sys.stderr)
        return 1
    if args.prometheus:
        text = render_prometheus_rules(ruleset)
        if args.prometheus == "-":
            sys.stdout.write(text)
        else:
            atomic_write_text(args.prometheus, text)
            print(f"Wrote {len(ruleset.rules)} Prometheus alerting rules to {args.prometheus}.")
    if args.alertmanager:
        from ..stack.alertmanager import render_alertmanager_config, write_alertmanager_config

        try:
            settings = load_settings()
        except ConfigError as error:
            print(f"otel-monitoring alerts export: {error}", file=sys.stderr)
            return 1
        if args.alertmanager == "-":
            sys.stdout.write(render_alertmanager_config(settings, ruleset))
        else:
            write_alertmanager_config(args.alertmanager, settings, ruleset)
            print(f"Wrote the Alertmanager configuration to {args.alertmanager} (it may hold secrets: mode 0600).")
    return 0


def run_test(args: argparse.Namespace) -> int:
    """Each configured channel gets one test notification, sent now (not queued); the exit status
    says whether all were delivered."""
    import socket
    import urllib.error

    from ..config import ConfigError, load_settings
    from ..local.channels import DeliveryError, channels_from_settings
    from ..local.engine import AlertEvent
    from ..local.snapshot import iso_time

    try:
        settings = load_settings()
    except ConfigError as error:
        print(f"otel-monitoring alerts test: {error}", file=sys.stderr)
        return 2
    now = time.time()
    alert = {"id": "otel_monitoring_test", "rule_id": "otel_monitoring_test", "name": "Test notification",
             "severity": "info", "state": "firing", "value": None, "threshold": 0.0, "since": iso_time(now),
             "acknowledged": False, "silenced_until": None, "labels": {"host": socket.gethostname()},
             "annotations": {"summary": "Sent by `otel-monitoring alerts test`; nothing is wrong."}}
    event = AlertEvent("firing", now, alert, notify=True)
    channels = [c for c in channels_from_settings(settings, settings.service_name)
                if args.channel in (None, c.name)]
    failed = 0
    if args.channel and not channels:
        print(f"local    {args.channel:<8} not configured (set its OTEL_MONITORING_ALERT_* variables)")
        failed += 1
    for channel in channels:
        try:
            channel.send(event, settings.alert_notify_timeout)
            print(f"local    {channel.name:<8} sent")
        except DeliveryError as error:
            failed += 1
            print(f"local    {channel.name:<8} FAILED: {error}")
    url = args.alertmanager
    if url is None:
        from ..stack.runner import running_stack_url

        url = running_stack_url("alertmanager", args.state_dir)
    if url and url != "none":
        from ..stack.alertmanager import configured_receivers, post_test_alert

        try:
            receivers = configured_receivers(url)
            wanted = [r for r in receivers if args.channel in (None, r)]
            if not wanted:
                print(f"alertmanager {url}: no {args.channel or 'channel'} receiver configured")
            for receiver in wanted:
                post_test_alert(url, receiver)
                print(f"alertmanager {receiver:<8} handed over (Alertmanager sends it within seconds)")
        except (urllib.error.URLError, OSError, ValueError) as error:
            failed += 1
            print(f"alertmanager {url}: FAILED: {getattr(error, 'reason', error)}")
    elif args.alertmanager is None:
        print("alertmanager: the stack is not running (`otel-monitoring stack up`); local channels only")
    return 1 if failed else 0
