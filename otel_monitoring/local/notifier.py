"""Delivers alert events to the channels without ever blocking the application.

Each channel has its own bounded queue and worker thread: ``notify`` only enqueues (dropping,
and counting, when a queue is full), so a slow or dead channel delays nothing but its own
queue. A delivery is tried up to ``1 + retries`` times with exponential backoff; each attempt is
bounded by the channel's timeout. Outcomes are counted (``otel_monitoring.alert.notifications``
with ``channel`` and ``outcome`` = sent | failed | dropped) and failures logged, once per
failing streak, so a dead channel does not flood the log.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import weakref
from dataclasses import dataclass, field
from typing import Any, Iterable

from .channels import CallbackChannel, Channel, DeliveryError
from .engine import AlertEvent
from .rules import SEVERITIES
from .. import names

__all__ = ["ChannelRoute", "Notifier"]

_logger = logging.getLogger("otel_monitoring.local")

NOTIFICATIONS_METRIC = names.ALERT_NOTIFICATIONS
_STOP = object()


@dataclass
class ChannelRoute:
    """A channel and the lowest severity it receives."""

    channel: Channel
    min_severity: str = "info"

    def accepts(self, event: AlertEvent) -> bool:
        return SEVERITIES.index(event.severity) >= SEVERITIES.index(self.min_severity)


@dataclass
class DeliveryStats:
    sent: int = 0
    failed: int = 0
    dropped: int = 0
    last_error: str = ""
    failing: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


class _Worker:
    def __init__(self, notifier: Notifier, route: ChannelRoute):
        self.notifier = notifier
        self.route = route
        self.queue: queue.Queue = queue.Queue(maxsize=notifier.queue_size)
        self.stats = DeliveryStats()
        self.in_flight = 0  # 1 while a delivery runs: at exit, it is lost if the thread is left behind
        self.thread = threading.Thread(target=self._run, name=f"otel-monitoring-notify-{route.channel.name}",
                                       daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while True:
            item = self.queue.get()
            try:
                if item is _STOP:
                    return
                self.in_flight = 1
                self._deliver(item)
            finally:
                self.in_flight = 0
                self.queue.task_done()

    def _deliver(self, event: AlertEvent) -> None:
        notifier, channel = self.notifier, self.route.channel
        attempts = 1 + notifier.retries
        for attempt in range(attempts):
            try:
                channel.send(event, notifier.timeout)
            except DeliveryError as error:
                if error.retryable and attempt + 1 < attempts and not notifier.stopping.is_set():
                    notifier.stopping.wait(min(notifier.backoff * 2 ** attempt, notifier.max_backoff))
                    continue
                self._failed(event, str(error))
                return
            except Exception as error:  # noqa: BLE001 - a channel bug must not kill its worker
                self._failed(event, f"{type(error).__name__}: {error}")
                return
            self._sent()
            return

    def _sent(self) -> None:
        stats = self.stats
        with stats.lock:
            stats.sent += 1
            recovered, stats.failing = stats.failing, False
        self.notifier.count(self.route.channel.name, "sent")
        if recovered:
            _logger.info("otel-monitoring: alert channel %s delivers again", self.route.channel.name)

    def _failed(self, event: AlertEvent, reason: str) -> None:
        stats = self.stats
        with stats.lock:
            stats.failed += 1
            stats.last_error = reason
            first, stats.failing = not stats.failing, True
        self.notifier.count(self.route.channel.name, "failed")
        log = _logger.warning if first else _logger.debug
        log("otel-monitoring: alert %s (%s) not delivered to %s after %d attempt(s): %s",
            event.alert["id"], event.kind, self.route.channel.name, 1 + self.notifier.retries, reason)


class Notifier:
    """Routes events with ``notify`` set to the channels that accept their severity."""

    def __init__(self, routes: Iterable[ChannelRoute], timeout: float = 5.0, retries: int = 2,
                 backoff: float = 1.0, max_backoff: float = 30.0, queue_size: int = 100, meter: Any = None):
        self.timeout, self.retries = timeout, retries
        self.backoff, self.max_backoff = backoff, max_backoff
        self.queue_size = queue_size
        self.stopping = threading.Event()
        self._counter = None
        if meter is not None:
            self._counter = meter.create_counter(NOTIFICATIONS_METRIC, unit="{notification}",
                                                 description="Alert notifications by channel and outcome")
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        for route in routes:
            self.add_route(route)
        if hasattr(os, "register_at_fork"):
            # Threads do not survive fork: a child gets fresh, empty queues and workers.
            restart = weakref.WeakMethod(self._after_fork)
            os.register_at_fork(after_in_child=lambda: (method := restart()) and method())

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
        self._workers = [_Worker(self, worker.route) for worker in self._workers]

    def add_route(self, route: ChannelRoute) -> None:
        with self._lock:
            if not self.stopping.is_set():
                self._workers.append(_Worker(self, route))

    def remove_channel(self, channel: Channel) -> None:
        with self._lock:
            for worker in [w for w in self._workers if w.route.channel is channel]:
                self._workers.remove(worker)
                _put_stop(worker.queue)

    def notify(self, event: AlertEvent, callbacks_only: bool = False) -> None:
        """Enqueue for every accepting channel (only the in-process callbacks with
        ``callbacks_only``: another process notified the others); never blocks, never raises."""
        if not event.notify or self.stopping.is_set():
            return
        for worker in list(self._workers):
            if not worker.route.accepts(event):
                continue
            if callbacks_only and not isinstance(worker.route.channel, CallbackChannel):
                continue
            try:
                worker.queue.put_nowait(event)
            except queue.Full:
                with worker.stats.lock:
                    worker.stats.dropped += 1
                    first = worker.stats.dropped == 1
                self.count(worker.route.channel.name, "dropped")
                (_logger.warning if first else _logger.debug)(
                    "otel-monitoring: alert channel %s is behind (%d queued); dropping the notification of %s",
                    worker.route.channel.name, self.queue_size, event.alert["id"])

    def count(self, channel: str, outcome: str) -> None:
        if self._counter is not None:
            try:
                self._counter.add(1, {"channel": channel, "outcome": outcome})
            except Exception:  # noqa: BLE001 - metrics must not break delivery
                pass

    def stats(self) -> dict[str, dict[str, Any]]:
        return {w.route.channel.name: {"sent": w.stats.sent, "failed": w.stats.failed, "dropped": w.stats.dropped,
                                       "last_error": w.stats.last_error} for w in self._workers}

    def undelivered(self) -> int:
        """Notifications dropped, failed after their retries, or still queued (e.g. at exit)."""
        total = 0
        for worker in list(self._workers):
            queued = sum(1 for item in list(worker.queue.queue) if item is not _STOP)
            total += queued + worker.in_flight + worker.stats.dropped + worker.stats.failed
        return total

    def wait_idle(self, timeout: float) -> bool:
        """Wait until every queue is empty and every delivery done (tests, demo). False on timeout."""
        deadline = time.monotonic() + timeout
        for worker in list(self._workers):
            while worker.queue.unfinished_tasks:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)
        return True

    def shutdown(self, timeout: float = 2.0) -> None:
        """Let the workers finish what is queued for up to ``timeout`` seconds, then leave them
        (they are daemon threads): exit is never held up by a dead channel."""
        deadline = time.monotonic() + timeout
        with self._lock:
            workers = list(self._workers)
        for worker in workers:
            if _put_stop(worker.queue):
                with worker.stats.lock:
                    worker.stats.dropped += 1
        for worker in workers:
            worker.thread.join(max(0.0, deadline - time.monotonic()))
        self.stopping.set()  # cut retries short for anything still running


def _put_stop(q: queue.Queue) -> bool:
    """Queue the stop; True if the oldest queued notification had to make room for it."""
    try:
        q.put_nowait(_STOP)
        return False
    except queue.Full:
        # Make room: the stop matters more than the oldest queued notification.
        made_room = False
        try:
            q.get_nowait()
            q.task_done()
            made_room = True
        except queue.Empty:
            pass
        try:
            q.put_nowait(_STOP)
        except queue.Full:
            pass
        return made_room
