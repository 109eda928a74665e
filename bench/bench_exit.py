"""How long exit takes with the collector down: the whole exit must stay within
OTEL_MONITORING_SHUTDOWN_TIMEOUT (plus interpreter teardown), whatever the export timeout.

    ~/.cache/otel-monitoring/venv-py3.11/bin/python bench/bench_exit.py --repeat 5 --timeout 2
    # another interpreter (with the package's dependencies installed), e.g. a Python 3.12 venv:
    ~/.cache/otel-monitoring/venv-py3.11/bin/python bench/bench_exit.py --python /path/to/py312/bin/python

Each run starts a fresh interpreter that ends 2,000 spans and logs against an OTLP endpoint where
nothing listens, then returns; the time from the program's last statement to the process' end is
measured (the program prints a timestamp just before returning). Also run with SIGTERM (--signal).
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import time

PROGRAM = """
import logging, sys, time, otel_monitoring
from opentelemetry import trace
otel_monitoring.configure(service_name="exit-bench")
tracer = trace.get_tracer("bench")
for i in range(2000):
    with tracer.start_as_current_span("op"):
        pass
    if i % 200 == 0:
        logging.getLogger("bench").warning("working %d", i)
print(time.time(), flush=True)
if sys.argv[1] == "signal":
    time.sleep(60)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def one_exit(timeout: float, how: str, python: str = sys.executable) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env.update(OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{free_port()}", OTEL_EXPORTER_OTLP_TIMEOUT="30",
               OTEL_MONITORING_SHUTDOWN_TIMEOUT=str(timeout))
    process = subprocess.Popen([python, "-c", PROGRAM, how], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    last = float(process.stdout.readline())
    if how == "signal":
        last = time.time()
        process.send_signal(signal.SIGTERM)
    process.wait()
    return time.time() - last


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--python", default=sys.executable, help="the interpreter to measure (default: this one)")
    args = parser.parse_args()
    for how in ("return", "signal"):
        times = [one_exit(args.timeout, how, args.python) for _ in range(args.repeat)]
        print(f"exit by {how:<7} shutdown_timeout {args.timeout:.1f}s: median {statistics.median(times):.2f}s, "
              f"max {max(times):.2f}s over {args.repeat} runs")


if __name__ == "__main__":
    main()
