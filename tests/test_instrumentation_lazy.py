"""configure() pays nothing for libraries the app does not import: instrumentors attach on import."""

from support import read_otlp_file, run_python, spans_from_requests


def test_libraries_are_instrumented_when_the_app_imports_them_not_before(tmp_path):
    code = f"""
    import sys, threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    import otel_monitoring
    m = otel_monitoring.configure(exporter="otlp_file", file_dir={str(tmp_path)!r}, system_metrics=False)
    heavy = [name for name in ("ccxt", "chromadb", "langchain_core", "fastapi", "requests", "httpx") if name in sys.modules]
    assert heavy == [], heavy

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.send_header("Content-Length", "0"); self.end_headers()
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    import requests  # imported after configure(): the import hook instruments it now
    assert requests.get(f"http://127.0.0.1:{{server.server_address[1]}}/quote", timeout=5).status_code == 200
    import ccxt
    from otel_monitoring.instrumentation.trading.ccxt import CcxtInstrumentor
    assert CcxtInstrumentor().is_instrumented_by_opentelemetry
    assert "chromadb" not in sys.modules
    server.shutdown()
    m.shutdown()
    """
    result = run_python(code, timeout=120)
    assert result.returncode == 0, result.stderr
    spans = [span for _r, _s, span in spans_from_requests(read_otlp_file(tmp_path / "traces.jsonl", "traces"))]
    assert [span.name for span in spans] == ["GET"]
