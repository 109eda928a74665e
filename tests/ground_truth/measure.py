"""Measure, for one workload run, how far each duration histogram is from its spans' durations.

    python tests/ground_truth/workload.py /tmp/gt            # the workload (files and snapshots)
    python tests/ground_truth/measure.py /tmp/gt             # the table docs/accuracy.md shows
"""

from __future__ import annotations

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]

import truth as T  # noqa: E402 - after the path set-up above


def main(out: str) -> None:
    spans = T.read_spans(os.path.join(out, "otlp", "traces.jsonl"))
    metrics = T.last_points(os.path.join(out, "otlp", "metrics.jsonl"))
    print("| histogram | calls | mean abs(metric - span) per call, worst series | calls in another bucket than their span |")
    print("| --- | --- | --- | --- |")
    for metric, (select, _) in T.HISTOGRAM_TRUTH.items():
        calls = moved = 0
        worst = 0.0
        for attrs, point, _ in metrics.get(metric, []):
            durations = [s.duration for s in select(spans, attrs)]
            calls += len(durations)
            worst = max(worst, abs(point.sum - sum(durations)) / max(1, len(durations)))
            truth = [0] * (len(point.explicit_bounds) + 1)
            for duration in durations:
                truth[T.bucket_index(duration, point.explicit_bounds)] += 1
            moved += sum(abs(a - b) for a, b in zip(truth, point.bucket_counts)) // 2
        print(f"| `{metric}` | {calls} | {worst * 1e3:.3f} ms | {moved} |")


if __name__ == "__main__":
    main(sys.argv[1])
