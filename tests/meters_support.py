"""Helpers of the meters tests: metrics read back with their units, points by attributes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class ReadMetric:
    name: str
    unit: str
    scope: str
    points: list[Any]

    def by(self, **attributes: Any) -> list[Any]:
        """Points whose attributes include all of ``attributes`` (dots written as __)."""
        wanted = {k.replace("__", "."): v for k, v in attributes.items()}
        return [p for p in self.points if all(p.attributes.get(k) == v for k, v in wanted.items())]

    def value(self, **attributes: Any) -> Any:
        points = self.by(**attributes)
        assert len(points) == 1, f"{self.name}: expected one point for {attributes}, got {len(points)}"
        point = points[0]
        return point.value if hasattr(point, "value") else point


def read_metrics(reader: Any) -> dict[str, ReadMetric]:
    data = reader.get_metrics_data()
    found: dict[str, ReadMetric] = {}
    if data is None:
        return found
    for resource_metrics in data.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                entry = found.setdefault(metric.name, ReadMetric(metric.name, metric.unit, scope_metrics.scope.name, []))
                entry.points.extend(metric.data.data_points)
    return found
