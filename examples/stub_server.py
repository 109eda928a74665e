"""What the local stubs share: a JSON HTTP handler and a server on 127.0.0.1 run from a daemon thread,
with an optional per-request latency and injected failures (``fail_next``)."""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["JsonHandler", "StubServer"]


class JsonHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive, JSON answers, no access log. ``self.server.stub`` is the StubServer."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall

    def log_message(self, *args: Any) -> None:
        pass

    def send_json(self, status: int, payload: Any) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_events(self, events: list[Any]) -> None:
        """Server-sent events (``data: {json}`` per event, then ``data: [DONE]``), as streaming APIs answer."""
        body = "".join(f"data: {json.dumps(event)}\n\n" for event in events) + "data: [DONE]\n\n"
        encoded = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    stub: "StubServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that drops its keep-alive connection is normal traffic, not a stub fault:
        # socketserver would print its traceback into the demo's output.
        if isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            return
        super().handle_error(request, client_address)


class StubServer:
    """Serves ``handler`` on 127.0.0.1 (port 0: any free port) from a daemon thread until ``stop()``."""

    handler: type[JsonHandler] = JsonHandler
    name = "stub"
    path_prefix = ""  # appended to the base URL in ``url``

    def __init__(self, port: int = 0, latency: float = 0.0):
        self.port = port
        self.latency = latency
        self.requests: list[tuple[str, Any]] = []
        self._failures = 0
        self._lock = threading.Lock()
        self._server: _Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stub first"
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path_prefix}"

    def start(self) -> "StubServer":
        self._server = _Server(("127.0.0.1", self.port), self.handler)
        self._server.stub = self
        threading.Thread(target=self._server.serve_forever, name=self.name, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "StubServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def fail_next(self, count: int = 1) -> None:
        """Answer the next ``count`` requests with the service's own rate-limit error."""
        with self._lock:
            self._failures += count

    def take_failure(self) -> bool:
        """Called once per request: waits the latency, then says whether this request must fail."""
        if self.latency:
            time.sleep(self.latency)
        with self._lock:
            if self._failures > 0:
                self._failures -= 1
                return True
        return False
