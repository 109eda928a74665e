"""Per-call CPU cost of GenAI instrumentation, side by side with the peers, one process per variant.

    # the peers are a bench-only extra, in their own virtualenv (they register instrumentors of
    # their own, which must never reach the product's environment):
    python3.11 -m venv ~/.cache/otel-monitoring/venv-bench && \
      ~/.cache/otel-monitoring/venv-bench/bin/pip install -e '.[bench]'
    ~/.cache/otel-monitoring/venv-bench/bin/python bench/bench_genai_peers.py [--calls 2000] [--repeat 5] \
      [--rounds 3] [--workloads retriever_invoke,chromadb_query] [--variants otel-monitoring,openlit]

Variants (each in a fresh process: the peers' uninstrument is unreliable):
- bare: no instrumentation;
- otel-monitoring: our langchain and chromadb instrumentors (chain spans by wrapping);
- ours-no-embeddings: the same with langchain embeddings left untraced, the work the peers do on a
  retrieval (one span; none of them traces the query's embeddings call);
- callbacks: the same chain/chat spans made by a langchain callback handler instead of wrapping
  (how OpenLLMetry and OpenInference attach), to choose between the two ways in;
- openllmetry (its langchain and chromadb instrumentations), openinference (langchain),
  openlit (langchain and chromadb, among others).
Every variant gets the same SDK pipeline: ALWAYS_ON sampling, a BatchSpanProcessor to a null
exporter and one in-memory metric reader. Workloads run in process with no network: a fake chat
model reporting token usage (invoke and a 3-chunk stream), deterministic embeddings, an in-memory
retriever over 20 documents, a chromadb query, and an LCEL chain (prompt | chat | parser).

Measured per workload: CPU microseconds per call of the calling thread (``time.thread_time``) and
of the whole process (the export thread included), each the best of ``--repeat`` blocks of
``--calls`` calls, the workloads taking turns block by block. Rounds run every variant once, in a
rotating order; a variant's overhead is read against bare in the same round, and the table shows
the median over rounds with its range. Beside the times, a load-independent count: the function
calls (Python and C) one call makes, over bare, and the spans per call, so cost can be read
against the work done.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any, Iterator

VARIANTS = ("bare", "otel-monitoring", "ours-no-embeddings", "callbacks", "openllmetry", "openinference", "openlit")
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
    if variant in ("otel-monitoring", "ours-no-embeddings"):
        from otel_monitoring.config import load_settings
        from otel_monitoring.instrumentation.rag.chromadb import ChromadbInstrumentor
        from otel_monitoring.instrumentation.rag.langchain import LangchainInstrumentor

        kwargs = dict(tracer_provider=tracer_provider, meter_provider=meter_provider, settings=load_settings({}))
        instrumentor = LangchainInstrumentor()
        instrumentor.instrument(**kwargs)
        ChromadbInstrumentor().instrument(**kwargs)
        if variant == "ours-no-embeddings":
            # The peers' work on a retrieval: its span only, the query's embeddings call untraced
            # (none of them traces embeddings). A measurement, not a product setting.
            from langchain_core.embeddings import DeterministicFakeEmbedding, Embeddings  # noqa: F401 - defined, so wrapped, now

            for owner, name, original in instrumentor._patcher.patches:
                if isinstance(owner, type) and issubclass(owner, Embeddings):
                    setattr(owner, name, original)
    elif variant == "callbacks":
        install_callback_tracer(tracer_provider)
    elif variant == "openllmetry":
        from opentelemetry.instrumentation.chromadb import ChromaInstrumentor
        from opentelemetry.instrumentation.langchain import LangchainInstrumentor as Peer

        Peer().instrument(tracer_provider=tracer_provider, meter_provider=meter_provider)
        ChromaInstrumentor().instrument(tracer_provider=tracer_provider)
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


def example_models() -> Any:
    """The examples' models module: ``otel_monitoring.examples`` when installed, else the checkout's
    ``examples/`` (a worktree on PYTHONPATH over an editable install of another checkout)."""
    try:
        from otel_monitoring.examples import rag_models

        return rag_models
    except ImportError:
        import importlib.util

        path = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples", "rag_models.py")
        spec = importlib.util.spec_from_file_location("bench_rag_models", path)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        return module


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

    client = chromadb.EphemeralClient(settings=chromadb.Settings(anonymized_telemetry=False))
    collection = client.get_or_create_collection("bench-peers", embedding_function=example_models().HashEmbeddingFunction())
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


def calls_per_call(call: Any) -> int:
    """Python and C function calls one workload call makes (a profile hook counts them): a
    load-independent measure of work beside the CPU times, which a shared machine makes noisy."""
    counted = [0]

    def hook(frame: Any, event: str, arg: Any) -> None:
        if event == "call" or event == "c_call":
            counted[0] += 1

    sys.setprofile(hook)
    try:
        call()
    finally:
        sys.setprofile(None)
    return counted[0] - 1  # the setprofile(None) call itself


def run_variant(variant: str, calls: int, repeat: int, only: list[str]) -> dict[str, Any]:
    tracer_provider, meter_provider, exporter = build_pipeline()
    try:
        instrument(variant, tracer_provider, meter_provider)
    except ImportError as error:
        return {"variant": variant, "error": f"not installed: {error}"}
    chosen = {name: call for name, call in workloads().items() if name in only}
    for call in chosen.values():
        for _ in range(min(calls, 200)):  # warm-up: caches, lazy imports, first-call paths
            call()
    tracer_provider.force_flush()
    thread: dict[str, list[float]] = {name: [] for name in chosen}
    process: dict[str, list[float]] = {name: [] for name in chosen}
    spans: dict[str, int] = dict.fromkeys(chosen, 0)
    # The workloads take turns block by block, so a burst of load falls on all of them alike.
    for _ in range(repeat):
        for name, call in chosen.items():
            exported_before = exporter.exported
            process_start, thread_start = time.process_time(), time.thread_time()
            for _ in range(calls):
                call()
            thread_end = time.thread_time()
            tracer_provider.force_flush()  # the export thread's CPU belongs to the variant's cost
            process_end = time.process_time()
            thread[name].append((thread_end - thread_start) / calls * 1e6)
            process[name].append((process_end - process_start) / calls * 1e6)
            spans[name] += exporter.exported - exported_before
    results = {name: {"thread_us": min(thread[name]), "process_us": min(process[name]),
                      "spans": spans[name] / (calls * repeat), "calls": calls_per_call(chosen[name])}
               for name in chosen}
    tracer_provider.shutdown()
    return {"variant": variant, "results": results}


# --- the parent: every variant, one process each ---


def summarize(rounds: list[dict[str, dict[str, Any]]], variant: str, workload: str, key: str) -> dict[str, float] | None:
    """Median and range over rounds of the variant's overhead over bare in the same round."""
    overheads = []
    for rows in rounds:
        mine = rows.get(variant, {}).get("results", {}).get(workload)
        bare = rows.get("bare", {}).get("results", {}).get(workload)
        if mine is not None and bare is not None:
            overheads.append(mine[key] - bare[key])
    if not overheads:
        return None
    return {"median": statistics.median(overheads), "low": min(overheads), "high": max(overheads)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per timed block")
    parser.add_argument("--repeat", type=int, default=5, help="timed blocks per workload in each process (best kept)")
    parser.add_argument("--rounds", type=int, default=3, help="run every variant this many times, interleaved")
    parser.add_argument("--variant", choices=VARIANTS, help="run one variant in this process (internal)")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset to run")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma-separated subset to run")
    parser.add_argument("--json", metavar="FILE", help="also write every round's raw results here")
    args = parser.parse_args(argv)
    only = [w for w in args.workloads.split(",") if w]
    unknown = set(only) - set(WORKLOADS)
    if unknown:
        parser.error(f"unknown workload(s) {sorted(unknown)}: choose among {', '.join(WORKLOADS)}")
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.calls, args.repeat, only)))
        return 0

    variants = [v for v in args.variants.split(",") if v]
    if "bare" not in variants:
        variants.insert(0, "bare")  # every overhead is read against bare in the same round
    rounds: list[dict[str, dict[str, Any]]] = []
    errors: dict[str, str] = {}
    # Rounds interleave the variants (in a rotating order), so a burst of load on a shared machine
    # hits them all alike; each round's overhead is read against that round's bare run.
    for number in range(args.rounds):
        rows: dict[str, dict[str, Any]] = {}
        shift = number % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            output = subprocess.run([sys.executable, __file__, "--variant", variant, "--calls", str(args.calls),
                                     "--repeat", str(args.repeat), "--workloads", ",".join(only)],
                                    capture_output=True, text=True,
                                    env={**os.environ, "OTEL_SDK_DISABLED": "false"}, check=False)
            lines = [line for line in output.stdout.splitlines() if line.startswith("{")]
            if output.returncode != 0 or not lines:
                errors.setdefault(variant, (output.stderr.strip().splitlines() or ["failed"])[-1])
                continue
            row = json.loads(lines[-1])
            if "error" in row:
                errors.setdefault(variant, row["error"])
                continue
            rows[variant] = row
        rounds.append(rows)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"args": vars(args), "load_average": os.getloadavg(), "rounds": rounds}, handle, indent=1)

    shown = [v for v in variants if v != "bare" and v not in errors]
    print(f"Python {sys.version.split()[0]}, {args.calls} calls x {args.repeat} blocks x {args.rounds} rounds; "
          f"load average now {os.getloadavg()[0]:.1f}")
    for key, title in (("thread_us", "CPU of the calling thread"), ("process_us", "CPU of the process (export thread included)")):
        print(f"\n{title}, us per call over bare: median of rounds [min..max]; bare: median of rounds")
        print(f"{'workload':<17}{'bare':>7}" + "".join(f"{v:>24}" for v in shown))
        for workload in only:
            bare_values = [r["bare"]["results"][workload][key] for r in rounds if "bare" in r]
            cells = []
            for variant in shown:
                found = summarize(rounds, variant, workload, key)
                cells.append("-" if found is None else
                             f"{found['median']:+.0f} [{found['low']:+.0f}..{found['high']:+.0f}]")
            bare_cell = f"{statistics.median(bare_values):.0f}" if bare_values else "-"
            print(f"{workload:<17}{bare_cell:>7}" + "".join(f"{c:>24}" for c in cells))
    print("\nWork per call (deterministic): function calls over bare [spans per call]")
    print(f"{'workload':<17}{'bare':>7}" + "".join(f"{v:>24}" for v in shown))
    last = {v: next((r[v] for r in reversed(rounds) if v in r), None) for v in variants}
    for workload in only:
        bare_row = last.get("bare")
        bare_calls = bare_row["results"][workload]["calls"] if bare_row else 0
        cells = []
        for variant in shown:
            row = last.get(variant)
            result = row["results"].get(workload) if row else None
            cells.append("-" if result is None else f"{result['calls'] - bare_calls:+d} [{result['spans']:.1f}]")
        print(f"{workload:<17}{bare_calls:>7}" + "".join(f"{c:>24}" for c in cells))
    for variant, error in errors.items():
        print(f"\n{variant}: {error}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
