"""Direct LLM clients: the real ``openai`` client, instrumented by the contrib openai-v2 package that
``GenAIClientsInstrumentor`` enables, against the local OpenAI-compatible stub (JSON and SSE).
Spans, token usage and cost are checked exactly against what the stub answered; langchain's
ChatOpenAI over the same client gives a parent and a child span and is counted once."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest

from otel_monitoring.config import load_settings
from otel_monitoring.instrumentation.genai_clients import GenAIClientsInstrumentor, NestedGenAIMarker
from otel_monitoring.instrumentation.rag.langchain import LangchainInstrumentor
from otel_monitoring.meters.cost import CostMeter
from otel_monitoring.meters.cost_processor import CostSpanProcessor
from otel_monitoring.meters.prices import load_prices
from otel_monitoring.examples.llm_stub import OpenAIStub

PROMPT = "what moved the bitcoin order book today"
GPT_4O_MINI = (Decimal("0.15"), Decimal("0.60"))  # USD per million input / output tokens (prices.yaml)


def words(text):
    return len(text.split())


def llm_cost(input_tokens, output_tokens, prices=GPT_4O_MINI):
    return (input_tokens * prices[0] + output_tokens * prices[1]) / Decimal(1_000_000)


@pytest.fixture
def stub():
    with OpenAIStub() as server:
        yield server


@pytest.fixture
def pipeline(telemetry):
    """The pieces configure() puts together: marker and cost processors, the client instrumentations."""
    meter = CostMeter(telemetry.meter_provider, load_prices())
    telemetry.tracer_provider.add_span_processor(NestedGenAIMarker(meter_provider=telemetry.meter_provider))
    telemetry.tracer_provider.add_span_processor(CostSpanProcessor(meter))
    instrumentor = GenAIClientsInstrumentor()
    instrumentor.instrument(tracer_provider=telemetry.tracer_provider, meter_provider=telemetry.meter_provider,
                            settings=load_settings({}))
    yield meter
    instrumentor.uninstrument()


def genai_points(telemetry, name):
    return [p for p in telemetry.metrics().get(name, [])]


def red_calls(telemetry):
    """{(component, operation, outcome, error.type): calls} of the RED counter."""
    return {(p.attributes["component"], p.attributes["operation"], p.attributes["outcome"],
             p.attributes.get("error.type")): p.value
            for p in telemetry.metrics().get("otel_monitoring.operation.calls", []) if p.value}


def test_chat_json_span_tokens_and_cost(telemetry, stub, pipeline):
    client = openai.OpenAI(base_url=stub.url, api_key="test-key", max_retries=0)
    response = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
    answer = response.choices[0].message.content
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (words(PROMPT), words(answer))

    (span,) = [s for s in telemetry.spans() if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert span.name == "chat gpt-4o-mini"
    assert span.attributes["gen_ai.provider.name"] == "openai"
    assert span.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert span.attributes["gen_ai.usage.input_tokens"] == words(PROMPT)
    assert span.attributes["gen_ai.usage.output_tokens"] == words(answer)
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    # Content capture is off by default: no prompt or answer anywhere on the span.
    assert not any(PROMPT in str(value) or answer in str(value) for value in span.attributes.values())
    assert not [e for e in span.events if PROMPT in str(e.attributes)]

    assert pipeline.totals[("model_inference", "gpt-4o-mini")] == llm_cost(words(PROMPT), words(answer))
    (duration,) = genai_points(telemetry, "gen_ai.client.operation.duration")
    assert duration.count == 1
    tokens = {p.attributes["gen_ai.token.type"]: p.sum for p in genai_points(telemetry, "gen_ai.client.token.usage")}
    assert tokens == {"input": words(PROMPT), "output": words(answer)}
    # A direct client call is an operation like any other: one RED call, from its span's duration.
    assert span.attributes["otel_monitoring.component"] == "openai"
    assert red_calls(telemetry) == {("openai", "chat", "success", None): 1}
    (red,) = telemetry.metrics()["otel_monitoring.operation.duration"]
    assert red.attributes["gen_ai.request.model"] == "gpt-4o-mini"
    assert (red.count, red.sum) == (1, pytest.approx((span.end_time - span.start_time) / 1e9, abs=1e-9))


def test_chat_sse_stream_span_tokens_and_cost(telemetry, stub, pipeline):
    client = openai.OpenAI(base_url=stub.url, api_key="test-key", max_retries=0)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}],
                                            stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 3  # a real stream: one event per word

    (span,) = [s for s in telemetry.spans() if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert span.attributes["gen_ai.usage.input_tokens"] == words(PROMPT)
    assert span.attributes["gen_ai.usage.output_tokens"] == words(answer)
    assert pipeline.totals[("model_inference", "gpt-4o-mini")] == llm_cost(words(PROMPT), words(answer))


async def test_async_embeddings_span_tokens_and_cost(telemetry, stub, pipeline):
    client = openai.AsyncOpenAI(base_url=stub.url, api_key="test-key", max_retries=0)
    texts = ["order book depth", "gas fees rose sharply"]
    result = await client.embeddings.create(model="text-embedding-3-small", input=texts)
    assert len(result.data) == 2
    (span,) = [s for s in telemetry.spans() if s.attributes.get("gen_ai.operation.name") == "embeddings"]
    assert span.name == "embeddings text-embedding-3-small"
    assert span.attributes["gen_ai.usage.input_tokens"] == sum(map(words, texts))
    price = load_prices().embeddings["text-embedding-3-small"]
    assert pipeline.totals[("model_inference", "text-embedding-3-small")] == sum(map(words, texts)) * price / Decimal(1_000_000)


def test_client_error_marks_span_and_costs_nothing(telemetry, stub, pipeline):
    client = openai.OpenAI(base_url=stub.url, api_key="test-key", max_retries=0)
    stub.fail_next(1)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": PROMPT}])
    (span,) = [s for s in telemetry.spans() if s.attributes.get("gen_ai.operation.name") == "chat"]
    assert span.status.status_code.name == "ERROR"
    # util-genai 1.1b0 writes the class's repr ("<class 'openai.RateLimitError'>") rather than its name.
    assert "RateLimitError" in span.attributes["error.type"]
    assert sum(pipeline.totals.values()) == 0
    assert red_calls(telemetry) == {("openai", "chat", "error", "RateLimitError"): 1}


def test_langchain_chat_over_the_client_is_parent_and_counted_once(telemetry, stub, pipeline):
    from langchain_openai import ChatOpenAI

    LangchainInstrumentor().instrument(tracer_provider=telemetry.tracer_provider,
                                       meter_provider=telemetry.meter_provider, settings=load_settings({}))
    try:
        model = ChatOpenAI(model="gpt-4o-mini", base_url=stub.url, api_key="test-key", max_retries=0,
                           stream_usage=True)
        message = model.invoke(PROMPT)
        streamed = "".join(chunk.content for chunk in model.stream(PROMPT))
    finally:
        LangchainInstrumentor().uninstrument()
    assert streamed == message.content

    chats = [s for s in telemetry.spans() if s.attributes.get("gen_ai.operation.name") == "chat"]
    outer = [s for s in chats if s.instrumentation_scope.name.startswith("otel_monitoring.")]
    inner = [s for s in chats if not s.instrumentation_scope.name.startswith("otel_monitoring.")]
    assert len(outer) == len(inner) == 2  # invoke and stream, each seen by langchain and by the client
    for parent, child in zip(sorted(outer, key=lambda s: s.start_time), sorted(inner, key=lambda s: s.start_time)):
        assert child.parent.span_id == parent.context.span_id
        assert child.context.trace_id == parent.context.trace_id

    # Cost: each call once (the innermost span), not twice.
    answer_tokens = words(message.content)
    assert pipeline.totals[("model_inference", "gpt-4o-mini")] == 2 * llm_cost(words(PROMPT), answer_tokens)
    # gen_ai.client.* metrics: each call once (the client's), not once more for the langchain span.
    durations = genai_points(telemetry, "gen_ai.client.operation.duration")
    assert sum(p.count for p in durations) == 2
    tokens = genai_points(telemetry, "gen_ai.client.token.usage")
    assert sum(p.sum for p in tokens if p.attributes["gen_ai.token.type"] == "input") == 2 * words(PROMPT)
    # The RED view keeps its one row per call, from the langchain span.
    calls = [p for p in telemetry.metrics()["otel_monitoring.operation.calls"]
             if p.attributes.get("component") == "langchain" and p.attributes.get("operation") == "chat"]
    assert sum(p.value for p in calls) == 2
    assert {key[0] for key in red_calls(telemetry)} == {"langchain"}  # the client spans add no RED row
    assert not [s for s in inner if "otel_monitoring.component" in s.attributes]


def test_configure_attaches_the_client_and_storage_instrumentations_on_import(tmp_path):
    """As deployed: configure() with the file exporter; openai and sqlalchemy imported afterwards are
    traced, the chat is priced exactly, and the request's cost per root operation is recorded."""
    from support import attributes, read_otlp_file, run_python, spans_from_requests

    code = f"""
    import sys
    import otel_monitoring
    from otel_monitoring.examples.llm_stub import OpenAIStub
    m = otel_monitoring.configure(exporter="otlp_file", file_dir={str(tmp_path)!r}, system_metrics=False)
    assert "openai" not in sys.modules and "sqlalchemy" not in sys.modules
    import openai, sqlalchemy
    with OpenAIStub() as stub:
        client = openai.OpenAI(base_url=stub.url, api_key="test-key", max_retries=0)
        with otel_monitoring.traced("rag", "answer"):
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{{"role": "user", "content": {PROMPT!r}}}])
            engine = sqlalchemy.create_engine("sqlite://")
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT 1"))
    print(reply.usage.prompt_tokens, reply.usage.completion_tokens)
    m.shutdown()
    """
    result = run_python(code, timeout=180)
    assert result.returncode == 0, result.stderr
    input_tokens, output_tokens = map(int, result.stdout.split())
    assert input_tokens == words(PROMPT)

    spans = {span.name: span for _r, _s, span in spans_from_requests(read_otlp_file(tmp_path / "traces.jsonl", "traces"))}
    root, chat, select = spans["rag.answer"], spans["chat gpt-4o-mini"], spans["SELECT"]
    assert chat.parent_span_id == root.span_id and select.parent_span_id == root.span_id
    assert attributes(chat.attributes)["gen_ai.usage.output_tokens"] == output_tokens
    http = [s for s in spans.values() if s.parent_span_id == chat.span_id]
    assert [s.name for s in http] == ["POST"]  # the client's HTTP request, under the chat span

    points = {}
    for request in read_otlp_file(tmp_path / "metrics.jsonl", "metrics"):
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    for point in getattr(metric, kind).data_points:
                        points.setdefault(metric.name, []).append((attributes(point.attributes), point))
    expected = float(llm_cost(input_tokens, output_tokens))
    costs = {tuple(sorted(a.items())): p.as_double for a, p in points["otel_monitoring.cost"]
             if a["cost.type"] == "model_inference"}  # the last point of each cumulative series
    assert sum(costs.values()) == pytest.approx(expected, rel=1e-9)
    per_operation = {tuple(sorted(a.items())): p for a, p in points["otel_monitoring.cost.per_operation"]}
    ((key, point),) = per_operation.items()  # the last point of the one series
    assert key == (("operation", "rag.answer"),)
    assert (point.count, point.sum) == (1, pytest.approx(expected, rel=1e-9))


def test_langchain_embeddings_over_the_client_inside_a_retrieval(telemetry, stub, pipeline):
    """Embeddings under a retrieval are another call: the retrieval keeps its metrics, the embeddings
    call (seen by langchain and by the client) is counted once."""
    from langchain_core.vectorstores import InMemoryVectorStore
    from langchain_openai import OpenAIEmbeddings

    embeddings = OpenAIEmbeddings(model="text-embedding-3-small", base_url=stub.url, api_key="test-key",
                                  check_embedding_ctx_length=False, max_retries=0)  # no tokenizer download
    LangchainInstrumentor().instrument(tracer_provider=telemetry.tracer_provider,
                                       meter_provider=telemetry.meter_provider, settings=load_settings({}))
    try:
        store = InMemoryVectorStore(embeddings)
        store.add_texts(["bitcoin order book depth is thin", "ethereum gas fees rose"])  # one embeddings call
        telemetry.span_exporter.clear()
        store.similarity_search("order book", k=1)  # a retrieval and a second embeddings call
    finally:
        LangchainInstrumentor().uninstrument()

    spans = telemetry.spans()
    (search,) = [s for s in spans if s.attributes.get("gen_ai.operation.name") == "retrieval"]
    outer, inner = sorted((s for s in spans if s.attributes.get("gen_ai.operation.name") == "embeddings"),
                          key=lambda s: s.start_time)
    assert inner.parent.span_id == outer.context.span_id and outer.parent.span_id == search.context.span_id
    by_operation = {}
    for point in genai_points(telemetry, "gen_ai.client.operation.duration"):
        operation = point.attributes["gen_ai.operation.name"]
        by_operation[operation] = by_operation.get(operation, 0) + point.count
    assert by_operation == {"retrieval": 1, "embeddings": 2}


def test_opentelemetry_instrument_langchain_over_the_client_counted_once(tmp_path):
    """As deployed with no code change: opentelemetry-instrument enables our langchain instrumentor and
    the contrib openai_v2 one from their entry points; the call is one parent/child pair, priced once
    and counted once on gen_ai.client.operation.duration."""
    import os
    import subprocess
    import sys

    from support import attributes, clean_env, read_otlp_file, spans_from_requests

    script = tmp_path / "app.py"
    script.write_text(
        "from langchain_openai import ChatOpenAI\n"
        "from otel_monitoring.examples.llm_stub import OpenAIStub\n"
        "with OpenAIStub() as stub:\n"
        "    model = ChatOpenAI(model='gpt-4o-mini', base_url=stub.url, api_key='test-key', max_retries=0)\n"
        f"    message = model.invoke({PROMPT!r})\n"
        "print(message.usage_metadata['input_tokens'], message.usage_metadata['output_tokens'])\n"
    )
    bindir = os.path.dirname(sys.executable)
    env = clean_env(OTEL_SERVICE_NAME="rag-app", OTEL_MONITORING_FILE_DIR=str(tmp_path / "out"),
                    OTEL_MONITORING_SYSTEM_METRICS="false", PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    result = subprocess.run([os.path.join(bindir, "opentelemetry-instrument"), sys.executable, str(script)],
                            env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    input_tokens, output_tokens = map(int, result.stdout.split())

    spans = [span for _r, _s, span in spans_from_requests(read_otlp_file(tmp_path / "out" / "traces.jsonl", "traces"))]
    chats = [s for s in spans if attributes(s.attributes).get("gen_ai.operation.name") == "chat"]
    assert len(chats) == 2
    outer, inner = sorted(chats, key=lambda s: s.start_time_unix_nano)
    assert inner.parent_span_id == outer.span_id
    assert attributes(outer.attributes)["otel_monitoring.component"] == "langchain"

    points = {}
    for request in read_otlp_file(tmp_path / "out" / "metrics.jsonl", "metrics"):
        for resource_metrics in request.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    kind = metric.WhichOneof("data")
                    for point in getattr(metric, kind).data_points:
                        points.setdefault(metric.name, []).append((attributes(point.attributes), point))
    # Cumulative points may repeat across exports: take the last of each series.
    costs = {tuple(sorted(a.items())): p.as_double for a, p in points["otel_monitoring.cost"]
             if a["cost.type"] == "model_inference"}
    assert sum(costs.values()) == pytest.approx(float(llm_cost(input_tokens, output_tokens)), rel=1e-9)
    durations = {}
    for attrs, point in points["gen_ai.client.operation.duration"]:
        durations[tuple(sorted(attrs.items()))] = point.count
    assert sum(durations.values()) == 1
