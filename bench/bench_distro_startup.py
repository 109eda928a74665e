"""Start-up of ``opentelemetry-instrument`` with the otel-monitoring distro against the stock one.

    ~/.cache/otel-monitoring/venv-py3.11/bin/python bench/bench_distro_startup.py --repeat 10

Each case runs ``opentelemetry-instrument python -c <program>`` in a fresh interpreter, the cases
interleaved run by run; the result is the median per case and the ratio to the stock distro (the
SDK's own configurator, every installed instrumentor entry point loaded, ours excluded: what a user
without this package gets). Target: ours within 1.2x of stock, because ours attaches instrumentors
when the program imports their library instead of importing every instrumented library up front.
Exporters are ``none`` so only start-up is measured.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

BIN = os.path.dirname(sys.executable)
PROGRAM = "import sys; print(sorted(m for m in {modules!r} if m in sys.modules))"
HEAVY = ("fastapi", "langchain_core", "chromadb", "ccxt", "requests", "httpx", "aiohttp", "openai")


def environments() -> dict[str, dict[str, str]]:
    from otel_monitoring.instrumentation import INSTRUMENTORS

    base = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    base.update(OTEL_TRACES_EXPORTER="none", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none")
    stock = dict(base, OTEL_PYTHON_DISTRO="stock-default", OTEL_PYTHON_CONFIGURATOR="sdk",
                 OTEL_PYTHON_DISABLED_INSTRUMENTATIONS=",".join(INSTRUMENTORS))
    ours = dict(base, OTEL_PYTHON_DISTRO="otel_monitoring", OTEL_PYTHON_CONFIGURATOR="otel_monitoring")
    return {"stock distro": stock, "otel-monitoring distro": ours}


def run_once(env: dict[str, str], cwd: str) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run([os.path.join(BIN, "opentelemetry-instrument"), sys.executable, "-c",
                             PROGRAM.format(modules=HEAVY)], env=env, cwd=cwd, capture_output=True, text=True,
                            check=True)
    return time.perf_counter() - started, result.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    cases = environments()
    times: dict[str, list[float]] = {name: [] for name in cases}
    imported: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as cwd:
        for _ in range(args.repeat):
            for name, env in cases.items():
                elapsed, imported[name] = run_once(env, cwd)
                times[name].append(elapsed)
    stock = statistics.median(times["stock distro"])
    print(f"{'case':<26} {'median s':>9} {'x stock':>8}  libraries imported at start-up")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<26} {median:>9.3f} {median / stock:>8.2f}  {imported[name]}")


if __name__ == "__main__":
    main()
