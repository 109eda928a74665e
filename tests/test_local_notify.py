"""Notification channels against real servers on 127.0.0.1: an HTTP server receiving webhook, Slack and
Discord payloads, an SMTP server (aiosmtpd) receiving email, a hanging and a refusing destination."""

from __future__ import annotations

import email
import email.policy
import json
import logging
import os
import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from support import free_port

from otel_monitoring.local.channels import (CallbackChannel, DiscordChannel, EmailChannel, LogChannel, SlackChannel,
                                            WebhookChannel)
from otel_monitoring.local.engine import AlertEvent
from otel_monitoring.local.notifier import ChannelRoute, Notifier


def event(kind: str = "firing", severity: str = "critical", alert_id: str = "error_rate:api") -> AlertEvent:
    alert = {"id": alert_id, "rule_id": "error_rate", "name": "High error rate", "severity": severity,
             "state": "resolved" if kind == "resolved" else "firing", "value": 0.123456, "threshold": 0.05,
             "since": "2026-11-22T05:00:00.000Z", "acknowledged": False, "silenced_until": None,
             "labels": {"component": "api"}, "annotations": {"summary": "api: 0.1235 of calls failed"}}
    return AlertEvent(kind, 1_795_237_200.0, alert, notify=True)


class Receiver:
    """A real HTTP server: records JSON bodies per path; `/hang` blocks until released, `/fail/N`
    answers 500 N times then 200, `/bad` answers 400."""

    def __init__(self):
        self.requests: list[tuple[str, dict]] = []
        self.received = threading.Condition()
        self.release = threading.Event()
        self.hanging = threading.Event()
        self.failures: dict[str, int] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with receiver.received:
                    receiver.requests.append((self.path, body))
                    receiver.received.notify_all()
                status = 204 if self.path.startswith("/discord") else 200
                if self.path.startswith("/hang"):
                    receiver.hanging.set()
                    receiver.release.wait(30)
                elif self.path.startswith("/fail/"):
                    left = receiver.failures.setdefault(self.path, int(self.path.rsplit("/", 1)[1]))
                    if left > 0:
                        receiver.failures[self.path] = left - 1
                        status = 500
                elif self.path.startswith("/bad"):
                    status = 400
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, path: str, count: int = 1, timeout: float = 20) -> list[dict]:
        with self.received:
            self.received.wait_for(lambda: len(self.bodies(path)) >= count, timeout)
        return self.bodies(path)

    def bodies(self, path: str) -> list[dict]:
        return [body for p, body in self.requests if p == path]

    def close(self):
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def notifiers():
    made = []

    def make(*routes, **kwargs):
        kwargs.setdefault("backoff", 0.01)
        n = Notifier(routes, **kwargs)
        made.append(n)
        return n

    yield make
    for n in made:
        n.shutdown(timeout=0.5)


def test_webhook_slack_discord_payloads(receiver, notifiers):
    notifier = notifiers(ChannelRoute(WebhookChannel(receiver.url + "/hook", headers={"X-Token": "t"}, service="bot")),
                         ChannelRoute(SlackChannel(receiver.url + "/slack", service="bot")),
                         ChannelRoute(DiscordChannel(receiver.url + "/discord", service="bot")))
    notifier.notify(event())
    hook = receiver.wait_for("/hook")[0]
    assert hook["event"] == "firing" and hook["service"] == "bot"
    assert hook["alert"]["id"] == "error_rate:api" and hook["alert"]["labels"] == {"component": "api"}
    assert hook["text"] == "[FIRING critical] High error rate (error_rate:api): value 0.1235, threshold 0.05"

    slack = receiver.wait_for("/slack")[0]
    assert slack["text"] == hook["text"]
    attachment = slack["attachments"][0]
    assert attachment["color"] == "#d00000" and attachment["fallback"] == hook["text"]
    assert attachment["text"] == "api: 0.1235 of calls failed" and attachment["ts"] == 1795237200
    assert {"title": "component", "value": "api", "short": True} in attachment["fields"]

    discord = receiver.wait_for("/discord")[0]  # Discord answers 204 No Content: that is a success
    assert discord["content"] == hook["text"] and discord["username"] == "otel-monitoring"
    embed = discord["embeds"][0]
    assert embed["title"] == "High error rate is firing" and embed["color"] == 0xD00000
    assert embed["timestamp"] == "2026-11-21T05:00:00+00:00" and embed["description"] == "api: 0.1235 of calls failed"
    assert {"name": "Threshold", "value": "0.05", "inline": True} in embed["fields"]
    assert notifier.wait_idle(10)
    assert {name: s["sent"] for name, s in notifier.stats().items()} == {"webhook": 1, "slack": 1, "discord": 1}

    notifier.notify(event("resolved"))
    assert receiver.wait_for("/slack", 2)[1]["attachments"][0]["color"] == "#2eb886"  # green when resolved


def test_routing_by_severity_and_notify_flag(receiver, notifiers):
    notifier = notifiers(ChannelRoute(WebhookChannel(receiver.url + "/all"), "info"),
                         ChannelRoute(WebhookChannel(receiver.url + "/critical"), "critical"))
    notifier.notify(event(severity="warning", alert_id="a"))
    notifier.notify(AlertEvent("pending", 1.0, event(alert_id="quiet").alert, notify=False))
    notifier.notify(event(severity="emergency", alert_id="b"))
    assert notifier.wait_idle(10)
    assert [b["alert"]["id"] for b in receiver.bodies("/all")] == ["a", "b"]
    assert [b["alert"]["id"] for b in receiver.bodies("/critical")] == ["b"]


def test_hanging_and_refusing_channels_do_not_hold_up_the_others(receiver, notifiers, caplog):
    metrics = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[metrics]).get_meter("test")
    hanging = WebhookChannel(receiver.url + "/hang")
    hanging.name = "hanging"
    refusing = WebhookChannel(f"http://127.0.0.1:{free_port()}/nothing-listens")
    refusing.name = "refusing"
    notifier = notifiers(ChannelRoute(hanging), ChannelRoute(refusing), ChannelRoute(SlackChannel(receiver.url + "/slack")),
                         timeout=0.5, retries=2, meter=meter)
    with caplog.at_level(logging.WARNING, logger="otel_monitoring.local"):
        notifier.notify(event(alert_id="one"))
        notifier.notify(event(alert_id="two"))
        assert receiver.hanging.wait(20)
        # Both events reach Slack while the hanging destination still holds its first request.
        assert [b["text"].split("(")[1].split(")")[0] for b in receiver.wait_for("/slack", 2)] == ["one", "two"]
        assert not receiver.release.is_set()
        assert notifier.wait_idle(30)  # the hanging channel gives up after its timeout and retries
    stats = notifier.stats()
    assert stats["slack"]["sent"] == 2
    assert stats["refusing"]["failed"] == 2 and "Connection" in stats["refusing"]["last_error"]
    assert stats["hanging"]["failed"] == 2 and "timed out" in stats["hanging"]["last_error"]
    assert len(receiver.bodies("/hang")) == 6  # 1 + 2 retries per event
    # One warning per failing channel, not one per failed delivery.
    warnings = [r.getMessage() for r in caplog.records if "not delivered" in r.getMessage()]
    assert len(warnings) == 2
    counted = {}
    for rm in metrics.get_metrics_data().resource_metrics:
        for sm in rm.scope_metrics:
            for m in sm.metrics:
                for dp in m.data.data_points:
                    counted[(m.name, dp.attributes["channel"], dp.attributes["outcome"])] = dp.value
    assert counted == {("otel_monitoring.alert.notifications", "slack", "sent"): 2,
                       ("otel_monitoring.alert.notifications", "refusing", "failed"): 2,
                       ("otel_monitoring.alert.notifications", "hanging", "failed"): 2}


def test_retry_with_backoff_then_success_and_no_retry_on_400(receiver, notifiers):
    notifier = notifiers(ChannelRoute(WebhookChannel(receiver.url + "/fail/2")),
                         ChannelRoute(SlackChannel(receiver.url + "/bad")), retries=3)
    notifier.notify(event())
    assert notifier.wait_idle(20)
    assert len(receiver.bodies("/fail/2")) == 3
    assert len(receiver.bodies("/bad")) == 1
    stats = notifier.stats()
    assert stats["webhook"]["sent"] == 1 and stats["webhook"]["failed"] == 0
    assert stats["slack"]["failed"] == 1 and "400" in stats["slack"]["last_error"]


def test_full_queue_drops_and_counts(receiver, notifiers):
    notifier = notifiers(ChannelRoute(WebhookChannel(receiver.url + "/hang")), queue_size=2, timeout=30, retries=0)
    notifier.notify(event(alert_id="first"))
    assert receiver.hanging.wait(20)  # the worker holds "first"; its queue is empty
    for i in range(4):
        notifier.notify(event(alert_id=f"more{i}"))  # returns at once even though the channel is stuck
    assert notifier.stats()["webhook"]["dropped"] == 2
    receiver.release.set()
    assert notifier.wait_idle(20)
    assert [b["alert"]["id"] for b in receiver.bodies("/hang")] == ["first", "more0", "more1"]


def test_shutdown_is_bounded_with_a_dead_channel(receiver):
    notifier = Notifier([ChannelRoute(WebhookChannel(receiver.url + "/hang"))], timeout=30)
    notifier.notify(event())
    assert receiver.hanging.wait(20)
    notifier.shutdown(timeout=0.2)  # returns although the worker is stuck in the request
    assert notifier.stopping.is_set()
    notifier.notify(event())  # ignored after shutdown, never raises
    assert len(receiver.bodies("/hang")) == 1


def test_log_and_callback_channels(notifiers, caplog):
    received = []

    def on_alert(e):
        received.append(e.alert["id"])

    def broken(e):
        raise RuntimeError("user bug")

    notifier = notifiers(ChannelRoute(LogChannel()), ChannelRoute(CallbackChannel(on_alert)),
                         ChannelRoute(CallbackChannel(broken)))
    with caplog.at_level(logging.INFO):
        notifier.notify(event(severity="emergency"))
        assert notifier.wait_idle(10)
    assert received == ["error_rate:api"]
    record = next(r for r in caplog.records if r.name == "otel_monitoring.alerts")
    assert record.levelno == logging.CRITICAL and "[FIRING emergency] High error rate" in record.getMessage()
    assert any("RuntimeError: user bug" in r.getMessage() for r in caplog.records)


# --- email over a real SMTP server ---

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")
from aiosmtpd.smtp import AuthResult  # noqa: E402 - only when aiosmtpd is installed


class MailBox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def make_cert(tmp_path):
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return str(cert), str(key)


def test_email_plain(notifiers):
    box = MailBox()
    port = free_port()
    controller = aiosmtpd_controller.Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        channel = EmailChannel("127.0.0.1", port, "alerts@example.com", ["ops@example.com", "oncall@example.com"],
                               security="none", service="trading-bot")
        notifier = notifiers(ChannelRoute(channel))
        notifier.notify(event())
        assert notifier.wait_idle(20)
    finally:
        controller.stop()
    assert notifier.stats()["email"]["sent"] == 1
    sender, recipients, content = box.messages[0]
    assert sender == "alerts@example.com" and recipients == ["ops@example.com", "oncall@example.com"]
    message = email.message_from_bytes(content, policy=email.policy.default)
    assert message["Subject"] == "[FIRING critical] High error rate (error_rate:api): value 0.1235, threshold 0.05"
    body = message.get_content()
    assert "api: 0.1235 of calls failed" in body and "component: api" in body and "Service: trading-bot" in body
    assert "otel-monitoring alerts ack error_rate:api" in body


def test_email_starttls_and_login(tmp_path, notifiers):
    cert, key = make_cert(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    client_tls = ssl.create_default_context(cafile=cert)

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"alerts" and auth_data.password == b"s3cret"
        return AuthResult(success=ok, handled=False)

    box = MailBox()
    port = free_port()
    controller = aiosmtpd_controller.Controller(box, hostname="127.0.0.1", port=port, tls_context=server_tls,
                                                require_starttls=True, authenticator=authenticate,
                                                auth_require_tls=True)
    controller.start()
    try:
        good = EmailChannel("127.0.0.1", port, "a@example.com", ["b@example.com"], security="starttls",
                            username="alerts", password="s3cret", ssl_context=client_tls)
        bad = EmailChannel("127.0.0.1", port, "a@example.com", ["b@example.com"], security="starttls",
                           username="alerts", password="wrong", ssl_context=client_tls)
        bad.name = "email-bad-password"
        plain = EmailChannel("127.0.0.1", port, "a@example.com", ["b@example.com"], security="none")
        plain.name = "email-no-tls"
        notifier = notifiers(ChannelRoute(good), ChannelRoute(bad), ChannelRoute(plain), retries=2)
        notifier.notify(event())
        assert notifier.wait_idle(30)
    finally:
        controller.stop()
    stats = notifier.stats()
    assert stats["email"]["sent"] == 1
    assert stats["email-bad-password"]["failed"] == 1 and "login refused" in stats["email-bad-password"]["last_error"]
    assert stats["email-no-tls"]["failed"] == 1  # the server insists on STARTTLS
    assert len(box.messages) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_delivers_with_its_own_workers(receiver, notifiers):
    notifier = notifiers(ChannelRoute(WebhookChannel(receiver.url + "/hook")))
    pid = os.fork()
    if pid == 0:  # the child: deliver one event, exit with 0 if it went out
        ok = False
        try:
            notifier.notify(event(alert_id="from-child"))
            ok = notifier.wait_idle(20) and notifier.stats()["webhook"]["sent"] == 1
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert [b["alert"]["id"] for b in receiver.bodies("/hook")] == ["from-child"]
    notifier.notify(event(alert_id="from-parent"))  # the parent's workers are untouched
    assert [b["alert"]["id"] for b in receiver.wait_for("/hook", 2)] == ["from-child", "from-parent"]


def test_a_notification_shows_values_the_way_the_views_do():
    """A state rule's notification names the state (as alerts list and top do), not "100.0%"; a
    ratio rule's values are percentages, in the line and in the chat fields alike."""
    from otel_monitoring.local.channels import _fields, headline

    stale = event()
    stale.alert.update(name="Symbol STALE", id="market_data_stale:BTC/USDT", value=1.0, threshold=1.0,
                       unit="1", indicates="STALE")
    assert headline(stale).endswith("(market_data_stale:BTC/USDT): value STALE, threshold STALE")
    ratio = event()
    ratio.alert.update(unit="1")
    assert headline(ratio).endswith("value 12.3%, threshold 5.0%")
    assert ("Value", "12.3%") in _fields(ratio) and ("Threshold", "5.0%") in _fields(ratio)
