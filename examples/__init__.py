"""Small, realistic applications that otel-monitoring instruments; `otel-monitoring demo` runs them.

Each application module has ``demo(duration)``, which runs its workload for about ``duration``
seconds in the current (already configured) process, and runs standalone as
``python -m otel_monitoring.examples.<name>``. They ship inside the package, so an installed
wheel's ``otel-monitoring demo`` finds them; importing this package imports none of their
libraries. The stand-ins for what the demo cannot reach live here too, and speak the real wire formats on 127.0.0.1: ``exchange_stub`` (Binance and Kraken REST, for real
ccxt clients), ``llm_stub`` (the OpenAI chat-completions and embeddings API), on the shared
``stub_server``; ``rag_models`` has the deterministic embeddings and the OpenAI-compatible
langchain chat model.
"""
