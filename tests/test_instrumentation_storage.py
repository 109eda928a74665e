"""Storage: the contrib SQLAlchemy instrumentation on a real SQLite database and the contrib redis
instrumentation against a real Debian redis-server on 127.0.0.1, both enabled by
``StorageInstrumentor`` (as configure() does when the library is imported)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

import pytest
from support import free_port

from otel_monitoring.config import load_settings
from otel_monitoring.instrumentation.storage import StorageInstrumentor


def require_tool(name: str) -> str:
    """The program's path; skipped when missing, but a failure under CI, which must run the test."""
    path = shutil.which(name)
    if path is None:
        message = f"{name} not installed (scripts/install-test-tools.sh installs it)"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return path


@pytest.fixture
def storage(telemetry):
    instrumentor = StorageInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider,
                            settings=load_settings({}))
    yield instrumentor
    instrumentor.uninstrument()


@pytest.fixture
def redis_server(tmp_path):
    binary = require_tool("redis-server")
    port = free_port()
    process = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        for _ in range(300):  # bounded wait for the server to answer (not a pass/fail deadline)
            try:
                if client.ping():
                    break
            except redis.ConnectionError:
                if process.poll() is not None:
                    pytest.fail(f"redis-server exited with {process.returncode}")
                time.sleep(0.1)
        else:
            pytest.fail("redis-server did not answer PING")
        yield port
    finally:
        client.close()
        process.terminate()
        process.wait(timeout=30)


def test_sqlalchemy_on_sqlite_one_span_per_statement(telemetry, storage, tmp_path):
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'orders.db'}")
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("CREATE TABLE orders (id INTEGER PRIMARY KEY, symbol TEXT)"))
        connection.execute(sqlalchemy.text("INSERT INTO orders (symbol) VALUES (:s)"), [{"s": "BTC/USDT"}, {"s": "ETH/USDT"}])
    with engine.connect() as connection:
        rows = connection.execute(sqlalchemy.text("SELECT symbol FROM orders WHERE symbol = :s"), {"s": "BTC/USDT"}).all()
    assert rows == [("BTC/USDT",)]

    spans = [s for s in telemetry.spans() if s.attributes.get("db.system") == "sqlite" and s.name != "connect"]
    statements = [s.attributes["db.statement"] for s in spans]
    assert statements == ["CREATE TABLE orders (id INTEGER PRIMARY KEY, symbol TEXT)",
                          "INSERT INTO orders (symbol) VALUES (?)",  # executemany: one statement, one span
                          "SELECT symbol FROM orders WHERE symbol = ?"]
    database = str(tmp_path / "orders.db")
    assert [s.name for s in spans] == [f"CREATE {database}", f"INSERT {database}", f"SELECT {database}"]
    assert {s.attributes["db.name"] for s in spans} == {database}
    # Parameter values never reach the span.
    assert not any("BTC/USDT" in str(v) for s in spans for v in s.attributes.values())


def test_sqlite_errors_mark_the_span(telemetry, storage):
    import sqlalchemy

    engine = sqlalchemy.create_engine("sqlite://")
    with pytest.raises(sqlalchemy.exc.OperationalError), engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT * FROM missing_table"))
    (span,) = [s for s in telemetry.spans() if s.attributes.get("db.system") == "sqlite" and s.name != "connect"]
    assert span.attributes["db.statement"] == "SELECT * FROM missing_table"
    assert span.status.status_code.name == "ERROR"


def test_redis_commands_against_a_real_server(telemetry, storage, redis_server):
    import redis

    client = redis.Redis(host="127.0.0.1", port=redis_server)
    telemetry.span_exporter.clear()
    client.set("price:BTC/USDT", "64000")
    assert client.get("price:BTC/USDT") == b"64000"
    with client.pipeline() as pipe:
        pipe.incr("orders")
        pipe.incr("orders")
        assert pipe.execute() == [1, 2]
    client.close()

    spans = [s for s in telemetry.spans() if s.attributes.get("db.system") == "redis"]
    assert [s.name for s in spans] == ["SET", "GET", "INCRBY INCRBY"]  # a pipeline is one span
    assert spans[0].attributes["net.peer.port"] == redis_server or spans[0].attributes.get("server.port") == redis_server
    assert "64000" not in str(spans[0].attributes)  # values are not captured
    assert spans[2].attributes["db.redis.pipeline_length"] == 2
