"""An HTTP API and its client. (Minimal; the instrumentation issue makes it FastAPI under uvicorn
called with requests and httpx.)"""

from __future__ import annotations

import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry import trace

tracer = trace.get_tracer("examples.api_service")


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        with tracer.start_as_current_span(f"GET {self.path}", kind=trace.SpanKind.SERVER):
            body = b'{"status":"ok"}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def demo(duration: float) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/quote"
    try:
        deadline = time.monotonic() + duration
        while time.monotonic() < deadline:
            with tracer.start_as_current_span("GET", kind=trace.SpanKind.CLIENT):
                urllib.request.urlopen(url, timeout=5).read()
            time.sleep(0.01)
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    import otel_monitoring

    otel_monitoring.configure(service_name="api-service")
    demo(5.0)
