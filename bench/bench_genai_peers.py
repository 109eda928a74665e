"""Per-call CPU cost of GenAI instrumentation, side by side with the peers, one process per variant.

    # the peers are a bench-only extra, in their own virtualenv (they register instrumentors of
    # their own, which must never reach the product's environment):
    python3.11 -m venv ~/.cache/otel-monitoring/venv-bench && \
      ~/.cache/otel-monitoring/venv-bench/bin/pip install -e '.[bench]'
    ~/.cache/otel-monitoring/venv-bench/bin/python bench/bench_genai_peers.py [--calls 2000] [--repeat 5] [--rounds 3]

Variants (each in a fresh process: the peers' uninstrument is unreliable):
- bare: no instrumentation;
- otel-monitoring: our langchain and chromadb instrumentors (chain spans by wrapping);
- callbacks: the same chain/chat spans made by a langchain callback handler instead of wrapping
  (how OpenLLMetry and OpenInference attach), to choose between the two ways in;
- openllmetry, openinference, openlit: the peers' langchain instrumentations (openlit also
  instruments chromadb).
Every variant gets the same SDK pipeline: ALWAYS_ON sampling, a BatchSpanProcessor to a null
exporter and one in-memory metric reader. Workloads run in process with no network: a fake chat
model reporting token usage (invoke and a 3-chunk stream), deterministic embeddings, an in-memory
retriever over 20 documents, a chromadb query, and an LCEL chain (prompt | chat | parser).
Printed: CPU microseconds per call (process time, the exporter thread included), best of
``--repeat`` runs, and the overhead over bare. Spans per call are counted so that cost can be
read against the work done.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from typing import Any, Iterator

VARIANTS = ("bare", "otel-monitoring", "callbacks", "openllmetry", "openinference", "openlit")
WORKLOADS = ("chat_invoke", "chat_stream", "embed_query", "retriever_invoke", "chromadb_query", "chain_invoke")


# --- the child: one variant ---


def build_pipeline() -> tuple[Any, Any, Any]:
    from opentelemetry import metrics, trace
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON

    class CountingExporter(SpanExporter):
        exported = 0

        def export(self, spans):
            CountingExporter.exported += len(spans)
            return SpanExportResult.SUCCESS

    tracer_provider = TracerProvider(sampler=ALWAYS_ON, shutdown_on_exit=False)
    exporter = CountingExporter()
    processor = BatchSpanProcessor(exporter, max_queue_size=1 << 20)
    tracer_provider.add_span_processor(processor)
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()], shutdown_on_exit=False)
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return tracer_provider, meter_provider, exporter


def instrument(variant: str, tracer_provider: Any, meter_provider: Any) -> None:
    if variant == "otel-monitoring":
        from otel_monitoring.config import load_settings
        from otel_monitoring.instrumentation.rag.chromadb import ChromadbInstrumentor
        from otel_monitoring.instrumentation.rag.langchain import LangchainInstrumentor

        kwargs = dict(tracer_provider=tracer_provider, meter_provider=meter_provider, settings=load_settings({}))
        LangchainInstrumentor().instrument(**kwargs)
        ChromadbInstrumentor().instrument(**kwargs)
    elif variant == "callbacks":
        install_callback_tracer(tracer_provider)
    elif variant == "openllmetry":
        from opentelemetry.instrumentation.langchain import LangchainInstrumentor as Peer

        Peer().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
    elif variant == "openinference":
        from openinference.instrumentation.langchain import LangChainInstrumentor as Peer

        Peer().instrument(tracer_provider=tracer_provider)
    elif variant == "openlit":
        import tempfile

        import openlit

        # A local price file: openlit would otherwise download its price list at start.
        prices = {"chat": {"gpt-4o-mini": {"promptPrice": 0.00015, "completionPrice": 0.0006}},
                  "embeddings": {"fake": 0.0}}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(prices, handle)
        # It finds the global providers set above; content capture off, as ours by default.
        openlit.init(disable_batch=False, collect_gpu_stats=False, capture_message_content=False,
                     pricing_json=handle.name)


def install_callback_tracer(tracer_provider: Any) -> None:
    """The callback way in: a handler on every langchain run (as the callback-based peers attach),
    making the same spans as our wrapping: the outermost chain, chat with its token usage."""
    from contextvars import ContextVar

    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.tracers.context import register_configure_hook
    from opentelemetry import trace

    tracer = tracer_provider.get_tracer("bench.callbacks")

    class SpanHandler(BaseCallbackHandler):
        def __init__(self) -> None:
            self.spans: dict[Any, Any] = {}

        def _start(self, name: str, run_id: Any, parent_run_id: Any) -> None:
            parent = self.spans.get(parent_run_id)
            context = trace.set_span_in_context(parent) if parent is not None else None
            self.spans[run_id] = tracer.start_span(name, context=context)

        def _end(self, run_id: Any, attributes: dict | None = None) -> None:
            span = self.spans.pop(run_id, None)
            if span is not None:
                if attributes:
                    span.set_attributes(attributes)
                span.end()

        def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, **kwargs):
            if parent_run_id is None:  # outermost only, as ours
                self._start("chain", run_id, parent_run_id)

        def on_chain_end(self, outputs, *, run_id, **kwargs):
            self._end(run_id)

        def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, **kwargs):
            self._start("chat", run_id, parent_run_id)

        def on_llm_end(self, response, *, run_id, **kwargs):
            message = response.generations[0][0].message if response.generations else None
            usage = getattr(message, "usage_metadata", None) or {}
            self._end(run_id, {"gen_ai.usage.input_tokens": usage.get("input_tokens", 0),
                               "gen_ai.usage.output_tokens": usage.get("output_tokens", 0)})

        def on_retriever_start(self, serialized, query, *, run_id, parent_run_id=None, **kwargs):
            self._start("retrieval", run_id, parent_run_id)

        def on_retriever_end(self, documents, *, run_id, **kwargs):
            self._end(run_id)

    handler_var: ContextVar = ContextVar("bench_span_handler", default=None)
    register_configure_hook(handler_var, inheritable=True)
    handler_var.set(SpanHandler())


def workloads() -> dict[str, Any]:
    import chromadb
    from langchain_core.embeddings import DeterministicFakeEmbedding
    from langchain_core.language_models.chat_models import BaseChatModel
    from langchain_core.messages import AIMessage, AIMessageChunk
    from langchain_core.output_parsers import StrOutputParser
    from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
    from langchain_core.prompts import ChatPromptTemplate
    from langchain_core.vectorstores import InMemoryVectorStore

    usage = {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}

    class BenchChat(BaseChatModel):
        model_name: str = "gpt-4o-mini"

        @property
        def _llm_type(self) -> str:
            return "bench"

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            message = AIMessage(content="the order book is thin", usage_metadata=usage,
                                response_metadata={"model_name": self.model_name, "finish_reason": "stop"})
            return ChatResult(generations=[ChatGeneration(message=message)])

        def _stream(self, messages, stop=None, run_manager=None, **kwargs) -> Iterator[ChatGenerationChunk]:
            for word in ("the order", " book", " is thin"):
                yield ChatGenerationChunk(message=AIMessageChunk(content=word))
            yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage))

    chat = BenchChat()
    embeddings = DeterministicFakeEmbedding(size=64)
    store = InMemoryVectorStore(embeddings)
    store.add_texts([f"document {i} about markets" for i in range(20)])
    retriever = store.as_retriever(search_kwargs={"k": 2})

    from otel_monitoring.examples.rag_models import HashEmbeddingFunction

    client = chromadb.EphemeralClient(settings=chromadb.Settings(anonymized_telemetry=False))
    collection = client.get_or_create_collection("bench-peers", embedding_function=HashEmbeddingFunction())
    collection.add(ids=[str(i) for i in range(20)], documents=[f"document {i}" for i in range(20)])
    chain = ChatPromptTemplate.from_messages([("human", "{question}")]) | chat | StrOutputParser()

    return {
        "chat_invoke": lambda: chat.invoke("what moved the market?"),
        "chat_stream": lambda: list(chat.stream("what moved the market?")),
        "embed_query": lambda: embeddings.embed_query("order book"),
        "retriever_invoke": lambda: retriever.invoke("markets"),
        "chromadb_query": lambda: collection.query(query_texts=["markets"], n_results=2),
        "chain_invoke": lambda: chain.invoke({"question": "what moved the market?"}),
    }


def run_variant(variant: str, calls: int, repeat: int) -> dict[str, Any]:
    tracer_provider, meter_provider, exporter = build_pipeline()
    try:
        instrument(variant, tracer_provider, meter_provider)
    except ImportError as error:
        return {"variant": variant, "error": f"not installed: {error}"}
    results: dict[str, Any] = {}
    for name, call in workloads().items():
        for _ in range(min(calls, 200)):  # warm-up: caches, lazy imports, first-call paths
            call()
        tracer_provider.force_flush()
        exported_before = exporter.exported
        best = float("inf")
        for _ in range(repeat):
            start = time.process_time()
            for _ in range(calls):
                call()
            tracer_provider.force_flush()  # the export thread's CPU belongs to the variant's cost
            best = min(best, (time.process_time() - start) / calls)
        spans = (exporter.exported - exported_before) / (calls * repeat)
        results[name] = {"us": best * 1e6, "spans": spans}
    tracer_provider.shutdown()
    return {"variant": variant, "results": results}


# --- the parent: every variant, one process each ---


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=1, help="run every variant this many times, interleaved")
    parser.add_argument("--variant", choices=VARIANTS, help="run one variant in this process (internal)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset to run")
    args = parser.parse_args(argv)
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.calls, args.repeat)))
        return 0

    rows: dict[str, dict[str, Any]] = {}
    # Rounds interleave the variants, so a burst of load on a shared machine hits them all alike;
    # each workload keeps its best run over all rounds.
    for _ in range(args.rounds):
        for variant in args.variants.split(","):
            output = subprocess.run([sys.executable, __file__, "--variant", variant, "--calls", str(args.calls),
                                     "--repeat", str(args.repeat)], capture_output=True, text=True,
                                    env={**os.environ, "OTEL_SDK_DISABLED": "false"}, check=False)
            lines = [line for line in output.stdout.splitlines() if line.startswith("{")]
            if output.returncode != 0 or not lines:
                rows.setdefault(variant, {"error": (output.stderr.strip().splitlines() or ["failed"])[-1]})
                continue
            row = json.loads(lines[-1])
            if "results" not in rows.get(variant, {}):
                rows[variant] = row
                continue
            for workload, result in row.get("results", {}).items():
                kept = rows[variant]["results"].get(workload)
                if kept is None or result["us"] < kept["us"]:
                    rows[variant]["results"][workload] = result
    bare = rows.get("bare", {}).get("results", {})
    print(f"Python {sys.version.split()[0]}, {args.calls} calls x {args.repeat} repeats x {args.rounds} rounds, "
          "best run; CPU us per call (overhead over bare) [spans per call]\n")
    print(f"{'workload':<18}" + "".join(f"{v:>26}" for v in rows))
    for workload in WORKLOADS:
        cells = []
        for row in rows.values():
            result = row.get("results", {}).get(workload)
            if result is None:
                cells.append(f"{'-':>26}")
                continue
            overhead = result["us"] - bare[workload]["us"] if workload in bare else float("nan")
            cells.append(f"{result['us']:>10.0f} ({overhead:>+6.0f}) [{result['spans']:.1f}]")
        print(f"{workload:<18}" + "".join(f"{c:>26}" for c in cells))
    for variant, row in rows.items():
        if "error" in row:
            print(f"\n{variant}: {row['error']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
