"""Notification channels: log, generic webhook (JSON), Slack, Discord, email (SMTP), Python callback.

A channel turns an ``AlertEvent`` into one delivery and raises ``DeliveryError`` when it fails;
``retryable`` says whether trying again can help (a timeout or a 5xx can, a 400 cannot). Timeouts,
retries and queues belong to the notifier (notifier.py), so channels stay small and synchronous.
"""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from email.message import EmailMessage
from typing import Any, Callable, Mapping, Sequence

from .engine import AlertEvent
from .. import names

__all__ = ["CallbackChannel", "Channel", "DeliveryError", "DiscordChannel", "EmailChannel", "LogChannel",
           "SlackChannel", "WebhookChannel", "channels_from_settings"]

_alert_logger = logging.getLogger("otel_monitoring.alerts")

SEVERITY_COLORS = {"info": 0x439FE0, "warning": 0xDAA038, "critical": 0xD00000, "emergency": 0x7B0099}
RESOLVED_COLOR = 0x2EB886
LOG_LEVELS = {"info": logging.INFO, "warning": logging.WARNING, "critical": logging.ERROR,
              "emergency": logging.CRITICAL}
USER_AGENT = "otel-monitoring-alerts"


class DeliveryError(Exception):
    def __init__(self, message: str, retryable: bool = True):
        super().__init__(message)
        self.retryable = retryable


def headline(event: AlertEvent) -> str:
    """One line: ``[FIRING critical] High error rate (error_rate:api): value 12.0%, threshold 5.0%``,
    value and threshold in the rule's unit, or the state a state rule indicates (``value STALE``),
    as every view shows them."""
    from ..views.formatting import alert_value

    alert = event.alert
    return (f"[{event.kind.upper()} {alert['severity']}] {alert['name']} ({alert['id']}): "
            f"value {alert_value(alert)}, threshold {alert_value(alert, 'threshold')}")


def _summary(event: AlertEvent) -> str:
    annotations = event.alert.get("annotations") or {}
    return annotations.get("summary") or annotations.get("description") or ""


def _color(event: AlertEvent) -> int:
    return RESOLVED_COLOR if event.kind == "resolved" else SEVERITY_COLORS.get(event.alert["severity"], 0x808080)


class Channel:
    """Base: ``name`` shows in logs and in the delivery counter."""

    name = "channel"

    def send(self, event: AlertEvent, timeout: float) -> None:
        raise NotImplementedError


class LogChannel(Channel):
    """Alerts as records of the ``otel_monitoring.alerts`` logger (so also in the OTel logs pipeline)."""

    name = "log"

    def send(self, event: AlertEvent, timeout: float) -> None:
        level = logging.INFO if event.kind == "resolved" else LOG_LEVELS.get(event.alert["severity"], logging.WARNING)
        _alert_logger.log(level, "%s %s", headline(event), _summary(event),
                          extra={names.ALERT_ID: event.alert["id"], names.ALERT_EVENT: event.kind})


def post_json(url: str, payload: Any, timeout: float, headers: Mapping[str, str] | None = None) -> bytes:
    """POST JSON; DeliveryError for network errors and non-2xx answers (4xx other than 408/429 are final)."""
    body = json.dumps(payload).encode("utf-8")
    request = urllib.request.Request(url, data=body, method="POST", headers={  # noqa: S310 - the user's URL
        "Content-Type": "application/json", "User-Agent": USER_AGENT, **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the user's URL
            return response.read()
    except urllib.error.HTTPError as error:
        retryable = error.code >= 500 or error.code in (408, 429)
        raise DeliveryError(f"HTTP {error.code} {error.reason}", retryable=retryable) from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DeliveryError(f"{type(reason).__name__}: {reason}") from None


class WebhookChannel(Channel):
    """A generic JSON webhook: the event kind, the alert as alerts.json lists it, and a text line."""

    name = "webhook"

    def __init__(self, url: str, headers: Mapping[str, str] | None = None, service: str | None = None):
        self.url, self.headers, self.service = url, dict(headers or {}), service

    def payload(self, event: AlertEvent) -> dict[str, Any]:
        return {"version": 1, "source": "otel-monitoring", "service": self.service, "event": event.kind,
                "time": event.time, "text": headline(event), "alert": event.alert}

    def send(self, event: AlertEvent, timeout: float) -> None:
        post_json(self.url, self.payload(event), timeout, self.headers)


def _fields(event: AlertEvent) -> list[tuple[str, str]]:
    from ..views.formatting import alert_value

    alert = event.alert
    fields = [("Severity", alert["severity"]), ("State", alert["state"]),
              ("Value", alert_value(alert)), ("Threshold", alert_value(alert, "threshold")), ("Since", alert["since"])]
    fields += [(key, str(value)) for key, value in sorted(alert.get("labels", {}).items())]
    return fields


class SlackChannel(Channel):
    """A Slack incoming webhook: ``text`` (the notification line) and one coloured attachment."""

    name = "slack"

    def __init__(self, url: str, service: str | None = None):
        self.url, self.service = url, service

    def payload(self, event: AlertEvent) -> dict[str, Any]:
        return {
            "text": headline(event),
            "attachments": [{
                "fallback": headline(event),
                "color": f"#{_color(event):06x}",
                "title": f"{event.alert['name']} is {event.kind}",
                "text": _summary(event),
                "fields": [{"title": name, "value": value, "short": True} for name, value in _fields(event)],
                "footer": f"otel-monitoring{' · ' + self.service if self.service else ''}",
                "ts": int(event.time),
            }],
        }

    def send(self, event: AlertEvent, timeout: float) -> None:
        post_json(self.url, self.payload(event), timeout)


class DiscordChannel(Channel):
    """A Discord webhook: ``content`` and one embed (Discord's limits: title 256, description 4096,
    25 fields of 256/1024 characters)."""

    name = "discord"

    def __init__(self, url: str, service: str | None = None, username: str = "otel-monitoring"):
        self.url, self.service, self.username = url, service, username

    def payload(self, event: AlertEvent) -> dict[str, Any]:
        from datetime import datetime, timezone

        return {
            "username": self.username,
            "content": headline(event)[:2000],
            "embeds": [{
                "title": f"{event.alert['name']} is {event.kind}"[:256],
                "description": _summary(event)[:4096],
                "color": _color(event),
                "fields": [{"name": name[:256], "value": (value or "-")[:1024], "inline": True}
                           for name, value in _fields(event)][:25],
                "timestamp": datetime.fromtimestamp(event.time, tz=timezone.utc).isoformat(),
                "footer": {"text": f"otel-monitoring{' · ' + self.service if self.service else ''}"},
            }],
        }

    def send(self, event: AlertEvent, timeout: float) -> None:
        post_json(self.url, self.payload(event), timeout)


class EmailChannel(Channel):
    """Email over SMTP. ``security``: ``starttls`` (default; port 587), ``ssl`` (implicit TLS; port 465)
    or ``none`` (a local relay). ``username``/``password`` log in when given."""

    name = "email"

    def __init__(self, host: str, port: int, sender: str, recipients: Sequence[str], security: str = "starttls",
                 username: str | None = None, password: str | None = None, service: str | None = None,
                 ssl_context: ssl.SSLContext | None = None):
        self.host, self.port, self.sender, self.recipients = host, port, sender, list(recipients)
        self.security, self.username, self.password = security, username, password
        self.service = service
        self.ssl_context = ssl_context

    def message(self, event: AlertEvent) -> EmailMessage:
        message = EmailMessage()
        message["Subject"] = headline(event)
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        lines = [headline(event), "", _summary(event), ""]
        lines += [f"{name}: {value}" for name, value in _fields(event)]
        if self.service:
            lines += [f"Service: {self.service}"]
        lines += ["", "Sent by otel-monitoring. Acknowledge: otel-monitoring alerts ack " + event.alert["id"]]
        message.set_content("\n".join(lines))
        return message

    def send(self, event: AlertEvent, timeout: float) -> None:
        context = self.ssl_context or ssl.create_default_context()
        try:
            if self.security == "ssl":
                client: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=timeout, context=context)
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=timeout)
            with client:
                if self.security == "starttls":
                    client.starttls(context=context)
                if self.username:
                    client.login(self.username, self.password or "")
                client.send_message(self.message(event))
        except smtplib.SMTPAuthenticationError as error:
            raise DeliveryError(f"SMTP login refused ({error.smtp_code})", retryable=False) from None
        except smtplib.SMTPNotSupportedError as error:
            raise DeliveryError(f"SMTP server does not support it: {error}", retryable=False) from None
        except (smtplib.SMTPException, OSError) as error:
            raise DeliveryError(f"{type(error).__name__}: {error}") from None


class CallbackChannel(Channel):
    """A Python function called with each ``AlertEvent`` (``add_alert_callback``)."""

    def __init__(self, callback: Callable[[AlertEvent], Any]):
        self.callback = callback
        self.name = f"callback:{getattr(callback, '__qualname__', repr(callback))}"

    def send(self, event: AlertEvent, timeout: float) -> None:
        try:
            self.callback(event)
        except Exception as error:  # noqa: BLE001 - the user's code; its failure is counted, not raised
            raise DeliveryError(f"{type(error).__name__}: {error}", retryable=False) from None


def channels_from_settings(settings: Any, service: str | None = None) -> list[Channel]:
    """The channels the ``OTEL_MONITORING_ALERT_*`` settings configure; the log channel always."""
    import socket

    channels: list[Channel] = [LogChannel()]
    if settings.alert_webhook_url:
        channels.append(WebhookChannel(settings.alert_webhook_url, settings.alert_webhook_headers, service))
    if settings.alert_slack_webhook_url:
        channels.append(SlackChannel(settings.alert_slack_webhook_url, service))
    if settings.alert_discord_webhook_url:
        channels.append(DiscordChannel(settings.alert_discord_webhook_url, service))
    if settings.alert_email_to:
        security = settings.alert_smtp_security
        port = settings.alert_smtp_port or {"starttls": 587, "ssl": 465, "none": 25}[security]
        sender = settings.alert_email_from or f"otel-monitoring@{socket.gethostname()}"
        channels.append(EmailChannel(settings.alert_smtp_host, port, sender, settings.alert_email_to, security,
                                     settings.alert_smtp_username, settings.alert_smtp_password, service))
    return channels
