"""Start-up cost of ``configure()``: fresh interpreters, best of N, against a bare interpreter and one
that builds the stock SDK pipeline by hand.

    ~/.cache/otel-monitoring/venv-py3.11/bin/python bench/bench_startup.py --repeat 7

Library instrumentors attach when the application imports their library (post-import hooks), so
this cost does not grow with the number of installed extras.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

CASES = {
    "bare interpreter": "pass",
    "stock SDK pipeline by hand (tracer + meter provider, no exporter)": (
        "from opentelemetry import trace, metrics\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.metrics import MeterProvider\n"
        "trace.set_tracer_provider(TracerProvider()); metrics.set_meter_provider(MeterProvider())"
    ),
    "import otel_monitoring": "import otel_monitoring",
    "configure(exporter='none')": "import otel_monitoring; otel_monitoring.configure(exporter='none')",
    "configure() to files (the default)": "import otel_monitoring; otel_monitoring.configure()",
}


def best_of(code: str, repeat: int, cwd: str) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=cwd)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cwd:
        results = {name: best_of(code, args.repeat, cwd) for name, code in CASES.items()}
    bare = results["bare interpreter"]
    print(f"{'case':<70} {'s (best)':>9} {'minus bare':>11}")
    for name, seconds in results.items():
        print(f"{name:<70} {seconds:>9.3f} {seconds - bare:>11.3f}")


if __name__ == "__main__":
    main()
