"""Storage: the contrib SQLAlchemy instrumentation on a real SQLite database, the contrib redis
instrumentation against a real Debian redis-server, and psycopg (3), asyncpg and SQLAlchemy over
both against a real Debian PostgreSQL cluster started for the module on 127.0.0.1, all enabled by
``StorageInstrumentor`` (as configure() does when the library is imported)."""

from __future__ import annotations

import asyncio
import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
from support import free_port

from otel_monitoring.config import load_settings
from otel_monitoring.instrumentation.storage import StorageInstrumentor


def require_tool(name: str, path: str | None = None) -> str:
    """The program's path; skipped when missing, but a failure under CI, which must run the test."""
    path = shutil.which(name) if path is None else path
    if not path:
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


# --- PostgreSQL: a throwaway cluster (initdb + postgres) on a free port, for this module ---

def _postgres_bindir() -> str:
    """Debian keeps the server programs in /usr/lib/postgresql/<major>/bin; elsewhere, on PATH."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    initdb = require_tool("initdb (postgresql)", found[-1] if found else shutil.which("initdb"))
    return os.path.dirname(initdb)


@pytest.fixture(scope="module")
def postgres():
    """The port of a fresh cluster (trust auth on 127.0.0.1 only, socket in a temporary directory);
    stopped and removed afterwards. initdb refuses to run as root: as root, the cluster runs as the
    ``postgres`` user the Debian package creates."""
    bindir = _postgres_bindir()
    import psycopg

    base = tempfile.mkdtemp(prefix="otel-monitoring-pg-")
    as_user: dict = {}
    if os.geteuid() == 0:
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            shutil.rmtree(base, ignore_errors=True)
            require_tool("a 'postgres' user to run initdb as (Debian's postgresql package creates it)", "")
        os.chown(base, owner.pw_uid, owner.pw_gid)
        as_user = {"user": owner.pw_uid, "group": owner.pw_gid}
    data = os.path.join(base, "data")
    process = None
    try:
        subprocess.run([os.path.join(bindir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                        "--no-sync"], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **as_user)
        port = free_port()
        process = subprocess.Popen([os.path.join(bindir, "postgres"), "-D", data, "-p", str(port), "-k", base,
                                    "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **as_user)
        for _ in range(600):  # bounded wait for the server to accept connections (not a pass/fail deadline)
            try:
                psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres").close()
                break
            except psycopg.OperationalError:
                if process.poll() is not None:
                    pytest.fail(f"postgres exited with {process.returncode}")
                time.sleep(0.1)
        else:
            pytest.fail("postgres did not accept connections")
        with psycopg.connect(f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True) as c:
            c.execute("CREATE DATABASE rag")
        yield port
    finally:
        if process is not None:
            process.send_signal(signal.SIGINT)  # fast shutdown
            process.wait(timeout=60)
        shutil.rmtree(base, ignore_errors=True)


# Three documents with 3-d embeddings and a query vector: cosine similarity in plain SQL ranks them
# doc-b (0.98), doc-a (0.5), doc-c (0.0) -- a similarity search without pgvector.
DOCUMENTS = [("doc-a", [1.0, 0.0, 0.0]), ("doc-b", [0.6, 0.8, 0.0]), ("doc-c", [0.0, 0.0, 1.0])]
QUERY = [0.5, 0.8660254037844386, 0.0]
SIMILARITY = ("SELECT id, (SELECT sum(a * b) FROM unnest(embedding, %s::float8[]) AS t(a, b))"
              " / (sqrt((SELECT sum(a * a) FROM unnest(embedding) AS a)) * sqrt((SELECT sum(b * b) FROM unnest(%s::float8[]) AS b)))"
              " AS score FROM documents ORDER BY score DESC LIMIT %s")


def _db_spans(telemetry, scope: str | None = None) -> list:
    spans = [s for s in telemetry.spans() if s.attributes.get("db.system") == "postgresql" and s.name != "connect"]
    return [s for s in spans if scope is None or s.instrumentation_scope.name.endswith(scope)]


def test_psycopg_statements_against_a_real_postgres(telemetry, storage, postgres):
    import psycopg

    dsn = f"host=127.0.0.1 port={postgres} user=postgres dbname=rag"
    with psycopg.connect(dsn) as connection:
        connection.execute("DROP TABLE IF EXISTS documents")
        connection.execute("CREATE TABLE documents (id text PRIMARY KEY, embedding float8[])")
        with connection.cursor() as cursor:
            cursor.executemany("INSERT INTO documents VALUES (%s, %s)", DOCUMENTS)
            cursor.execute(SIMILARITY, (QUERY, QUERY, 2))
            ranked = [(doc, round(score, 2)) for doc, score in cursor.fetchall()]
        with pytest.raises(psycopg.errors.UndefinedTable):
            connection.execute("SELECT * FROM missing_table")
    assert ranked == [("doc-b", 0.99), ("doc-a", 0.5)]

    spans = _db_spans(telemetry)
    assert {s.instrumentation_scope.name for s in spans} == {"opentelemetry.instrumentation.psycopg"}
    assert [(s.name, s.attributes["db.statement"]) for s in spans] == [
        ("DROP", "DROP TABLE IF EXISTS documents"),
        ("CREATE", "CREATE TABLE documents (id text PRIMARY KEY, embedding float8[])"),
        ("INSERT", "INSERT INTO documents VALUES (%s, %s)"),  # executemany: one call, one span
        ("SELECT", SIMILARITY),
        ("SELECT", "SELECT * FROM missing_table"),
    ]
    for span in spans:
        assert span.kind.name == "CLIENT"
        assert (span.attributes["db.name"], span.attributes["net.peer.name"], span.attributes["net.peer.port"]) == (
            "rag", "127.0.0.1", postgres)
    assert [s.status.status_code.name for s in spans] == ["UNSET"] * 4 + ["ERROR"]
    # Parameter values (documents' ids, embeddings) never reach the spans.
    assert not any("doc-" in str(v) or "0.866" in str(v) for s in spans for v in s.attributes.values())


def test_asyncpg_statements_against_a_real_postgres(telemetry, storage, postgres):
    import asyncpg

    async def run():
        connection = await asyncpg.connect(host="127.0.0.1", port=postgres, user="postgres", database="rag")
        try:
            await connection.execute("DROP TABLE IF EXISTS prices")
            await connection.execute("CREATE TABLE prices (symbol text, price float8)")
            await connection.executemany("INSERT INTO prices VALUES ($1, $2)", [("BTC/USDT", 64000.0), ("ETH/USDT", 3100.0)])
            rows = await connection.fetch("SELECT symbol FROM prices WHERE price > $1 ORDER BY symbol", 1000.0)
            with pytest.raises(asyncpg.exceptions.UndefinedTableError):
                await connection.fetch("SELECT * FROM missing_table")
            return [row["symbol"] for row in rows]
        finally:
            await connection.close()

    assert asyncio.run(run()) == ["BTC/USDT", "ETH/USDT"]
    spans = _db_spans(telemetry)
    assert {s.instrumentation_scope.name for s in spans} == {"opentelemetry.instrumentation.asyncpg"}
    assert [(s.name, s.attributes["db.statement"]) for s in spans] == [
        ("DROP", "DROP TABLE IF EXISTS prices"),
        ("CREATE", "CREATE TABLE prices (symbol text, price float8)"),
        ("INSERT", "INSERT INTO prices VALUES ($1, $2)"),
        ("SELECT", "SELECT symbol FROM prices WHERE price > $1 ORDER BY symbol"),
        ("SELECT", "SELECT * FROM missing_table"),
    ]
    assert {(s.attributes["db.name"], s.attributes["net.peer.port"]) for s in spans} == {("rag", postgres)}
    assert [s.status.status_code.name for s in spans] == ["UNSET"] * 4 + ["ERROR"]
    assert not any("BTC/USDT" in str(v) for s in spans for v in s.attributes.values())


def test_sqlalchemy_over_psycopg_is_one_span_per_statement(telemetry, storage, postgres):
    import sqlalchemy

    engine = sqlalchemy.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{postgres}/rag")
    with engine.begin() as connection:  # the dialect's setup queries run on this first connect
        pass
    telemetry.span_exporter.clear()
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("DROP TABLE IF EXISTS orders"))
        connection.execute(sqlalchemy.text("CREATE TABLE orders (id serial PRIMARY KEY, symbol text)"))
        connection.execute(sqlalchemy.text("INSERT INTO orders (symbol) VALUES (:s)"), [{"s": "BTC/USDT"}, {"s": "ETH/USDT"}])
        count = connection.execute(sqlalchemy.text("SELECT count(*) FROM orders")).scalar_one()
    with pytest.raises(sqlalchemy.exc.ProgrammingError), engine.connect() as connection:
        connection.execute(sqlalchemy.text("SELECT * FROM missing_table"))
    engine.dispose()
    assert count == 2

    spans = _db_spans(telemetry)
    # SQLAlchemy's span is the one kept; psycopg under it stays quiet.
    assert {s.instrumentation_scope.name for s in spans} == {"opentelemetry.instrumentation.sqlalchemy"}
    assert [(s.name, s.attributes["db.statement"]) for s in spans] == [
        ("DROP rag", "DROP TABLE IF EXISTS orders"),
        ("CREATE rag", "CREATE TABLE orders (id serial PRIMARY KEY, symbol text)"),
        ("INSERT rag", "INSERT INTO orders (symbol) VALUES (%(s)s)"),
        ("SELECT rag", "SELECT count(*) FROM orders"),
        ("SELECT rag", "SELECT * FROM missing_table"),
    ]
    assert [s.status.status_code.name for s in spans] == ["UNSET"] * 4 + ["ERROR"]

    # A direct psycopg call beside SQLAlchemy keeps its own span (the suppression is per statement).
    import psycopg

    telemetry.span_exporter.clear()
    with psycopg.connect(f"host=127.0.0.1 port={postgres} user=postgres dbname=rag") as connection:
        assert connection.execute("SELECT count(*) FROM orders").fetchone() == (2,)
    assert [(s.instrumentation_scope.name, s.name) for s in _db_spans(telemetry)] == [
        ("opentelemetry.instrumentation.psycopg", "SELECT")]


def test_sqlalchemy_async_over_asyncpg_is_one_span_per_statement(telemetry, storage, postgres):
    import sqlalchemy
    from sqlalchemy.ext.asyncio import create_async_engine

    async def run():
        engine = create_async_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{postgres}/rag")
        try:
            async with engine.connect() as connection:  # the dialect's setup queries
                pass
            telemetry.span_exporter.clear()
            async with engine.begin() as connection:
                await connection.execute(sqlalchemy.text("DROP TABLE IF EXISTS fills"))
                await connection.execute(sqlalchemy.text("CREATE TABLE fills (qty float8)"))
                await connection.execute(sqlalchemy.text("INSERT INTO fills VALUES (:q)"), [{"q": 0.5}, {"q": 1.5}])
                return (await connection.execute(sqlalchemy.text("SELECT sum(qty) FROM fills"))).scalar_one()
        finally:
            await engine.dispose()

    assert asyncio.run(run()) == 2.0
    spans = _db_spans(telemetry)
    statements = [(s.instrumentation_scope.name.rsplit(".", 1)[1], s.attributes["db.statement"]) for s in spans]
    # One span per statement (SQLAlchemy's). The asyncpg adapter opens its transaction inside the
    # first statement's call (so under its span); its COMMIT, which SQLAlchemy does not trace as a
    # statement, keeps its asyncpg span.
    assert statements == [
        ("sqlalchemy", "DROP TABLE IF EXISTS fills"),
        ("sqlalchemy", "CREATE TABLE fills (qty float8)"),
        ("sqlalchemy", "INSERT INTO fills VALUES ($1)"),
        ("sqlalchemy", "SELECT sum(qty) FROM fills"),
        ("asyncpg", "COMMIT;"),
    ]


def test_one_layer_is_undone_by_uninstrument(telemetry, postgres):
    """After uninstrument, SQLAlchemy's dialect methods are the library's own again."""
    from sqlalchemy.engine import default

    originals = {name: getattr(default.DefaultDialect, name) for name in ("do_execute", "do_executemany")}
    instrumentor = StorageInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider,
                            settings=load_settings({}))
    assert all(getattr(default.DefaultDialect, name) is not fn for name, fn in originals.items())
    instrumentor.uninstrument()
    assert all(getattr(default.DefaultDialect, name) is fn for name, fn in originals.items())
