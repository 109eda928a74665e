"""Vectors per collection: the observable gauge follows adds and deletes in real chromadb
collections and langchain in-memory stores, is read only at collection time, and is capped."""

from __future__ import annotations

import gc
import logging

import chromadb
import pytest
from langchain_core.vectorstores import InMemoryVectorStore

from otel_monitoring.config import load_settings
from otel_monitoring.instrumentation.rag import vector_counts
from otel_monitoring.instrumentation.rag.chromadb import ChromadbInstrumentor
from otel_monitoring.instrumentation.rag.langchain import LangchainInstrumentor
from otel_monitoring.examples.rag_models import HashEmbeddingFunction, HashEmbeddings


@pytest.fixture
def instrumented(telemetry):
    kwargs = dict(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider,
                  settings=load_settings({}))
    LangchainInstrumentor().instrument(**kwargs)
    ChromadbInstrumentor().instrument(**kwargs)
    yield
    LangchainInstrumentor().uninstrument()
    ChromadbInstrumentor().uninstrument()


def counts(telemetry):
    return {(p.attributes["db.system.name"], p.attributes["db.collection.name"]): p.value
            for p in telemetry.metrics().get("otel_monitoring.vector_store.vectors", [])}


def test_chromadb_collections_after_adds_and_deletes(telemetry, instrumented):
    client = chromadb.EphemeralClient(settings=chromadb.Settings(anonymized_telemetry=False))
    news = client.get_or_create_collection("news-counts", embedding_function=HashEmbeddingFunction())
    books = client.get_or_create_collection("books-counts", embedding_function=HashEmbeddingFunction())
    news.add(ids=["a", "b", "c"], documents=["one", "two", "three"])
    books.add(ids=["x"], documents=["order book"])
    assert counts(telemetry) == {("chromadb", "news-counts"): 3, ("chromadb", "books-counts"): 1}
    news.delete(ids=["a", "b"])
    books.add(ids=["y", "z"], documents=["depth", "spread"])
    assert counts(telemetry) == {("chromadb", "news-counts"): 1, ("chromadb", "books-counts"): 3}
    # Counting happens at collection time, never as a span of the application's.
    assert sorted({s.attributes["db.operation.name"] for s in telemetry.spans()}) == ["add", "delete"]
    client.delete_collection("books-counts")
    del books
    gc.collect()
    assert counts(telemetry) == {("chromadb", "news-counts"): 1}


def test_langchain_in_memory_stores_after_adds_and_deletes(telemetry, instrumented):
    first = InMemoryVectorStore(HashEmbeddings())
    second = InMemoryVectorStore(HashEmbeddings())
    ids = first.add_texts(["btc", "eth", "sol", "ada"])
    second.add_texts(["fed"])
    assert counts(telemetry) == {("langchain_in_memory", "InMemoryVectorStore"): 4,
                                 ("langchain_in_memory", "InMemoryVectorStore-2"): 1}
    first.delete(ids[:3])
    assert counts(telemetry)[("langchain_in_memory", "InMemoryVectorStore")] == 1
    del second
    gc.collect()
    assert counts(telemetry) == {("langchain_in_memory", "InMemoryVectorStore"): 1}


def test_collections_are_capped(telemetry, instrumented, monkeypatch, caplog):
    gauge = vector_counts.vector_counts_for(telemetry.meter_provider, None, "chromadb", len)
    monkeypatch.setattr(gauge, "limit", 2)
    client = chromadb.EphemeralClient(settings=chromadb.Settings(anonymized_telemetry=False))
    with caplog.at_level(logging.WARNING, "otel_monitoring.instrumentation"):
        collections = [client.get_or_create_collection(f"capped-{i}", embedding_function=HashEmbeddingFunction())
                       for i in range(4)]
    assert sorted(counts(telemetry)) == [("chromadb", "capped-0"), ("chromadb", "capped-1")]
    assert [r for r in caplog.records if "more than 2 chromadb collections" in r.getMessage()]
    assert len(collections) == 4


def test_uninstrument_stops_the_gauge(telemetry):
    kwargs = dict(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider,
                  settings=load_settings({}))
    LangchainInstrumentor().instrument(**kwargs)
    store = InMemoryVectorStore(HashEmbeddings())
    store.add_texts(["btc"])
    assert counts(telemetry) == {("langchain_in_memory", "InMemoryVectorStore"): 1}
    LangchainInstrumentor().uninstrument()
    assert counts(telemetry) == {}
    LangchainInstrumentor().instrument(**kwargs)  # again on the same provider: the gauge comes back
    try:
        assert counts(telemetry) == {("langchain_in_memory", "InMemoryVectorStore"): 1}
    finally:
        LangchainInstrumentor().uninstrument()


def test_a_short_lived_process_exports_its_vector_counts_at_exit(tmp_path):
    """As deployed: configure(), add vectors, shutdown() before any periodic export. The final
    collection (the OTLP file's and the last snapshot) still reads the collections."""
    import json

    from support import attributes, read_otlp_file, run_python

    code = f"""
    import otel_monitoring
    m = otel_monitoring.configure(exporter="otlp_file", file_dir={str(tmp_path / "otlp")!r},
                                  snapshot_dir={str(tmp_path / "snap")!r}, system_metrics=False)
    from langchain_core.vectorstores import InMemoryVectorStore
    from otel_monitoring.examples.rag_models import HashEmbeddings
    store = InMemoryVectorStore(HashEmbeddings())
    store.add_texts(["btc", "eth", "sol"])
    m.shutdown()
    """
    result = run_python(code, timeout=180)
    assert result.returncode == 0, result.stderr
    exported = [(attributes(point.attributes)["db.collection.name"], point.as_int)
                for request in read_otlp_file(tmp_path / "otlp" / "metrics.jsonl", "metrics")
                for resource_metrics in request.resource_metrics for scope_metrics in resource_metrics.scope_metrics
                for metric in scope_metrics.metrics if metric.name == "otel_monitoring.vector_store.vectors"
                for point in metric.gauge.data_points]
    assert exported == [("InMemoryVectorStore", 3)]
    live = json.loads((tmp_path / "snap" / "metrics_live.json").read_text(encoding="utf-8"))
    assert [e["value"] for e in live["gauges"]["otel_monitoring.vector_store.vectors"]] == [3]
