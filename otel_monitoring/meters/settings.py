"""Parsers for the meters' settings whose values have a shape of their own (thresholds, budgets).

``config.py`` calls these through a lazy wrapper, so this module imports nothing heavy. Each
raises ``ValueError`` with what was wrong; ``config`` adds the variable name and an example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from ..thresholds import HOST_RESOURCE_THRESHOLDS

# cost.type values; the category defaults per type are in cost.py.
COST_TYPES = (
    "compute", "storage", "network", "api_call", "model_inference", "training", "execution", "external_api",
)
HEALTH_RESOURCES = tuple(HOST_RESOURCE_THRESHOLDS)
BUDGET_PERIODS = ("daily", "monthly")


def _check_pair(resource: str, warning: float, critical: float) -> tuple[float, float]:
    if not 0 < warning < critical <= 100:
        raise ValueError(f"{resource}: need 0 < warning < critical <= 100, got {warning:g}:{critical:g}")
    return float(warning), float(critical)


def parse_health_thresholds(value: Any) -> dict[str, tuple[float, float]]:
    """``cpu=70:90,memory=80:95`` (percent, warning:critical); resources not named keep their default.

    As an argument: ``{"cpu": (70, 90)}``.
    """
    result = dict(HOST_RESOURCE_THRESHOLDS)
    if isinstance(value, Mapping):
        items = [(str(k), v) for k, v in value.items()]
    else:
        items = []
        for part in str(value).split(","):
            if not part.strip():
                continue
            key, sep, pair = part.partition("=")
            warning, sep2, critical = pair.partition(":")
            if not sep or not sep2:
                raise ValueError(f"{part.strip()!r} is not resource=warning:critical")
            items.append((key, (warning, critical)))
    for key, pair in items:
        resource = key.strip().lower()
        if resource not in HEALTH_RESOURCES:
            raise ValueError(f"unknown resource {resource!r} (use {', '.join(HEALTH_RESOURCES)})")
        warning, critical = (float(x) for x in pair)
        result[resource] = _check_pair(resource, warning, critical)
    return result


@dataclass(frozen=True)
class BudgetSpec:
    """A spending limit in USD for one period, over all costs, one cost.type or one cost.category."""

    period: str  # daily | monthly (UTC calendar day / month)
    limit_usd: float
    cost_type: str | None = None
    category: str | None = None

    @property
    def name(self) -> str:
        scope = f"type.{self.cost_type}" if self.cost_type else f"category.{self.category}" if self.category else "total"
        return f"{self.period}:{scope}"

    def matches(self, cost_type: str, category: str) -> bool:
        if self.cost_type is not None:
            return cost_type == self.cost_type
        if self.category is not None:
            return category == self.category
        return True


def _budget(period: str, scope: str, limit: Any) -> BudgetSpec:
    period = period.strip().lower()
    if period not in BUDGET_PERIODS:
        raise ValueError(f"budget period {period!r} is not daily or monthly")
    amount = float(limit)
    if not (math.isfinite(amount) and amount > 0):
        raise ValueError(f"budget {period}:{scope} needs a finite limit above 0 (USD), got {limit!r}")
    scope = scope.strip()
    if scope == "total":
        return BudgetSpec(period, amount)
    kind, _, name = scope.partition(".")
    if kind == "type" and name:
        if name not in COST_TYPES:
            raise ValueError(f"budget scope {scope!r}: {name!r} is not a cost.type ({', '.join(COST_TYPES)})")
        return BudgetSpec(period, amount, cost_type=name)
    if kind == "category" and name:
        return BudgetSpec(period, amount, category=name)
    raise ValueError(f"budget scope {scope!r} is not total, type.<cost.type> or category.<name>")


def parse_budgets(value: Any) -> tuple[BudgetSpec, ...]:
    """``daily:type.model_inference=100,monthly:total=3000,daily:category.trading=20`` (USD).

    As an argument: that string, or a list of ``BudgetSpec`` / dicts
    ``{"period": "daily", "limit_usd": 100, "cost_type": "model_inference"}``.
    """
    if isinstance(value, (list, tuple)):
        budgets = []
        for item in value:
            if isinstance(item, BudgetSpec):
                budgets.append(item)
            elif isinstance(item, Mapping):
                scope = (f"type.{item['cost_type']}" if item.get("cost_type")
                         else f"category.{item['category']}" if item.get("category") else "total")
                budgets.append(_budget(str(item["period"]), scope, item["limit_usd"]))
            else:
                budgets.extend(parse_budgets(str(item)))
        return _unique(tuple(budgets))
    budgets = []
    for part in str(value).split(","):
        if not part.strip():
            continue
        head, sep, limit = part.partition("=")
        period, sep2, scope = head.partition(":")
        if not sep or not sep2:
            raise ValueError(f"{part.strip()!r} is not period:scope=limit")
        budgets.append(_budget(period, scope, limit))
    return _unique(tuple(budgets))


def _unique(budgets: tuple[BudgetSpec, ...]) -> tuple[BudgetSpec, ...]:
    names = [b.name for b in budgets]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"budget(s) {', '.join(duplicates)} given twice")
    return budgets
