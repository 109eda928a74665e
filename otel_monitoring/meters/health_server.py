"""The optional health endpoint: ``GET /health`` and ``GET /health/detailed``.

Started only when a port is configured (``OTEL_MONITORING_HEALTH_PORT``), bound to 127.0.0.1
unless told otherwise. Both paths run the checks on each request and answer 200 when every
critical check passes, 503 with the failing checks otherwise.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .health_checks import HealthRegistry, is_healthy

_logger = logging.getLogger(__name__)


def _handler(registry: HealthRegistry) -> type[BaseHTTPRequestHandler]:
    class HealthHandler(BaseHTTPRequestHandler):
        server_version = "otel-monitoring-health"

        def do_GET(self) -> None:  # http.server's naming
            path = self.path.split("?", 1)[0].rstrip("/")
            if path not in ("/health", "/health/detailed"):
                self._send(404, {"error": "not found; use /health or /health/detailed"})
                return
            results = registry.run()
            healthy = is_healthy(results)
            body: dict[str, Any] = {"status": "healthy" if healthy else "unhealthy"}
            failed = [r.name for r in results if not r.healthy and r.critical]
            if failed:
                body["failed_checks"] = failed
            if path == "/health/detailed":
                body["checks"] = {r.name: r.as_dict() for r in results}
            self._send(200 if healthy else 503, body)

        def _send(self, status: int, body: dict[str, Any]) -> None:
            payload = json.dumps(body, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:  # http.server's signature
            _logger.debug("health server: " + format, *args)

    return HealthHandler


class HealthServer:
    def __init__(self, registry: HealthRegistry, host: str = "127.0.0.1", port: int = 0):
        self._server = ThreadingHTTPServer((host, port), _handler(registry))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="otel-monitoring-health-server",
                                        daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/health"

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
