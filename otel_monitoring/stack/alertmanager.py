"""Alertmanager for the stack: its configuration generated from the settings the local engine uses
(``OTEL_MONITORING_ALERT_*``), so both paths notify the same people the same way, and its process.

- One receiver per configured channel (webhook, Slack, Discord, email); the ``log`` channel has no
  Alertmanager counterpart. Each channel gets the severities from its lowest one upwards
  (``OTEL_MONITORING_ALERT_ROUTES``, same defaults as the local notifier); an alert goes to every
  channel that accepts its severity (``continue: true``).
- A rule's ``cooldown`` becomes the ``repeat_interval`` of a sub-route matching its ``rule_id``.
- ``alerts test`` alerts (label ``otel_monitoring_test=<channel>``) go to the channel they name only.
- Every alert is its own group (``group_by: ['...']``), as the local engine notifies per alert.
- Inhibition: a firing critical (or emergency) silences the warning of the same ``condition`` and
  the same group labels.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Mapping

import yaml

from ..local.rules import INHIBIT_LABEL, SEVERITIES, RuleSet
from ..local.prometheus import label_name
from ..thresholds import ALERT_ROUTES
from .process import ProcessSpec

# Receivers named as the local channels, so `alerts test --channel slack` means the same on both paths.
# The log channel is the local engine's own; Alertmanager has the others.
DEFAULT_ROUTES = {channel: level for channel, level in ALERT_ROUTES.items() if channel != "log"}
NULL_RECEIVER = "none"
# `otel-monitoring alerts test` posts an alert carrying this label; it goes to that channel only.
TEST_LABEL = "otel_monitoring_test"
# Timing: an alert waits GROUP_WAIT for its inhibiting critical (Prometheus sends a group's alerts
# rule by rule), changes of a group are sent after GROUP_INTERVAL; alerts without a rule cooldown
# (the stack's own rules) repeat every DEFAULT_REPEAT while they fire.
GROUP_WAIT = "2s"
GROUP_INTERVAL = "10s"
DEFAULT_REPEAT = "4h"


def _at_least(severity: str) -> str:
    """A label regex for ``severity`` and every higher one."""
    return "|".join(SEVERITIES[SEVERITIES.index(severity):])


def _webhook_http_config(headers: Mapping[str, str]) -> dict[str, Any]:
    """Alertmanager 0.25 sends no custom headers; an ``authorization`` header maps to its own field."""
    for key, value in headers.items():
        if key.lower() == "authorization":
            scheme, _, credentials = value.partition(" ")
            return {"authorization": {"type": scheme, "credentials": credentials}} if credentials else {}
    return {}


def receivers(settings: Any) -> dict[str, dict[str, Any]]:
    """{channel: receiver} for the channels the settings configure."""
    found: dict[str, dict[str, Any]] = {}
    if settings.alert_webhook_url:
        config: dict[str, Any] = {"url": settings.alert_webhook_url, "send_resolved": True}
        http_config = _webhook_http_config(settings.alert_webhook_headers)
        if http_config:
            config["http_config"] = http_config
        found["webhook"] = {"name": "webhook", "webhook_configs": [config]}
    if settings.alert_slack_webhook_url:
        found["slack"] = {"name": "slack", "slack_configs": [{
            "api_url": settings.alert_slack_webhook_url, "send_resolved": True,
            "title": '[{{ .Status | toUpper }} {{ .CommonLabels.severity }}] {{ .CommonLabels.alertname }}',
            "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}",
        }]}
    if settings.alert_discord_webhook_url:
        found["discord"] = {"name": "discord", "discord_configs": [{
            "webhook_url": settings.alert_discord_webhook_url, "send_resolved": True}]}
    if settings.alert_email_to:
        found["email"] = {"name": "email", "email_configs": [
            {"to": ", ".join(settings.alert_email_to), "send_resolved": True}]}
    return found


def smtp_global(settings: Any) -> dict[str, Any]:
    security = settings.alert_smtp_security
    port = settings.alert_smtp_port or {"starttls": 587, "ssl": 465, "none": 25}[security]
    config: dict[str, Any] = {
        "smtp_smarthost": f"{settings.alert_smtp_host}:{port}",
        "smtp_from": settings.alert_email_from or f"otel-monitoring@{socket.gethostname()}",
        # Alertmanager speaks implicit TLS on port 465 by itself; STARTTLS is this switch.
        "smtp_require_tls": security == "starttls",
    }
    if settings.alert_smtp_username:
        config["smtp_auth_username"] = settings.alert_smtp_username
        config["smtp_auth_password"] = settings.alert_smtp_password or ""
    return config


def _cooldown_routes(ruleset: RuleSet | None) -> list[dict[str, Any]]:
    """Sub-routes giving each rule's alerts its cooldown as repeat interval (rules grouped by cooldown)."""
    from ..local.rules import format_duration

    by_cooldown: dict[float, list[str]] = {}
    for rule in ruleset.rules if ruleset else ():
        if rule.cooldown_s > 0:
            by_cooldown.setdefault(rule.cooldown_s, []).append(rule.id)
    return [{"matchers": [f'rule_id=~"{"|".join(sorted(ids))}"'], "repeat_interval": format_duration(cooldown)}
            for cooldown, ids in sorted(by_cooldown.items())]


def _group_labels(ruleset: RuleSet | None) -> list[str]:
    labels = {label_name(g) for rule in (ruleset.rules if ruleset else ()) for g in rule.group_by}
    return sorted(labels | {"service_name", "job", "instance"})


def alertmanager_config(settings: Any, ruleset: RuleSet | None) -> dict[str, Any]:
    """The alertmanager.yml document for these settings and rules."""
    channels = receivers(settings)
    levels = {**DEFAULT_ROUTES, **{k: v for k, v in settings.alert_routes.items() if k in DEFAULT_ROUTES}}
    cooldowns = _cooldown_routes(ruleset)
    # Test notifications first: each reaches exactly the channel it names.
    routes: list[dict[str, Any]] = [{"receiver": channel, "matchers": [f'{TEST_LABEL}="{channel}"']}
                                    for channel in channels]
    for channel in channels:
        route: dict[str, Any] = {"receiver": channel, "matchers": [f'severity=~"{_at_least(levels[channel])}"'],
                                 "continue": True}
        if cooldowns:
            route["routes"] = cooldowns
        routes.append(route)
    document: dict[str, Any] = {}
    if "email" in channels:
        document["global"] = smtp_global(settings)
    document["route"] = {
        "receiver": NULL_RECEIVER, "group_by": ["..."], "group_wait": GROUP_WAIT,
        "group_interval": GROUP_INTERVAL, "repeat_interval": DEFAULT_REPEAT, "routes": routes,
    }
    document["receivers"] = [{"name": NULL_RECEIVER}, *channels.values()]
    equal = [INHIBIT_LABEL, *_group_labels(ruleset)]
    document["inhibit_rules"] = [
        # The source must carry the label: alerts without one never inhibit (absent labels count as equal).
        {"source_matchers": ['severity=~"critical|emergency"', f'{INHIBIT_LABEL}=~".+"'],
         "target_matchers": ['severity=~"info|warning"'], "equal": equal},
        {"source_matchers": ['severity="emergency"', f'{INHIBIT_LABEL}=~".+"'],
         "target_matchers": ['severity="critical"'], "equal": equal},
    ]
    return document


class _NoAliases(yaml.SafeDumper):
    """Writes repeated sub-routes out in full (no &anchors), as people read the file."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def render_alertmanager_config(settings: Any, ruleset: RuleSet | None) -> str:
    header = ("# Generated by `otel-monitoring stack up` (or `otel-monitoring alerts export --alertmanager FILE`)\n"
              "# from the OTEL_MONITORING_ALERT_* settings and the alert rules' cooldowns. It holds the\n"
              "# channels' URLs and passwords: keep it private. Without channel settings it notifies nobody.\n")
    return header + yaml.dump(alertmanager_config(settings, ruleset), Dumper=_NoAliases, sort_keys=False, width=1000)


def write_alertmanager_config(path: str, settings: Any, ruleset: RuleSet | None) -> str:
    with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
        handle.write(render_alertmanager_config(settings, ruleset))
    os.chmod(path, 0o600)  # an existing file keeps its mode through os.open
    return path


def alertmanager_spec(binary: str, listen: str, config_path: str, data_dir: str) -> ProcessSpec:
    return ProcessSpec(
        name="alertmanager",
        argv=[
            binary,
            f"--config.file={config_path}",
            f"--storage.path={data_dir}",
            f"--web.listen-address={listen}",
            # Links in notifications point here (by default they name the machine's host name).
            f"--web.external-url=http://{listen}",
            # No cluster: the gossip port (0.0.0.0:9094 by default) is not wanted on a single host.
            "--cluster.listen-address=",
        ],
        health_url=f"http://{listen}/-/ready",
    )


def post_test_alert(url: str, channel: str, timeout: float = 5.0) -> None:
    """Ask the Alertmanager at ``url`` to notify ``channel`` (a test alert that resolves after a minute);
    raises OSError (urllib's errors) when it cannot."""
    import json
    import time
    import urllib.request
    from datetime import datetime, timezone

    def iso(seconds: float) -> str:
        return datetime.fromtimestamp(seconds, tz=timezone.utc).isoformat()

    now = time.time()
    alert = [{
        "labels": {"alertname": "otel_monitoring_test", TEST_LABEL: channel, "severity": "info"},
        "annotations": {"summary": f"Test notification from otel-monitoring to the {channel} channel",
                        "description": "Sent by `otel-monitoring alerts test`; nothing is wrong."},
        "startsAt": iso(now), "endsAt": iso(now + 60),
    }]
    request = urllib.request.Request(f"{url.rstrip('/')}/api/v2/alerts", data=json.dumps(alert).encode(),  # noqa: S310 - the stack's Alertmanager
                                     method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the stack's Alertmanager
        response.read()


def configured_receivers(url: str, timeout: float = 5.0) -> list[str]:
    """The receivers of the running Alertmanager's configuration (but the null one)."""
    import json
    import urllib.request

    with urllib.request.urlopen(f"{url.rstrip('/')}/api/v2/receivers", timeout=timeout) as response:  # noqa: S310 - the stack's Alertmanager
        return [r["name"] for r in json.loads(response.read()) if r["name"] != NULL_RECEIVER]
