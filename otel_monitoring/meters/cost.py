"""The ``otel_monitoring.cost`` counter: what was spent, by cost type, category and source.

Costs are computed in ``Decimal`` from the price table and recorded as floats. A cost whose
price is unknown (a model, exchange or currency not in the table) is never recorded as zero:
it is counted on ``otel_monitoring.cost.unpriced`` and warned about once per name.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from decimal import Decimal
from typing import Any, Mapping

from opentelemetry.metrics import get_meter

from ..version import __version__
from .budgets import BudgetTracker
from .current import Current
from .locks import ForkSafeLock
from .prices import MILLION, PriceTable, load_prices
from .settings import COST_TYPES
from .. import names

_logger = logging.getLogger(__name__)

SCOPE = "otel_monitoring.meters.cost"
OTHER = "_other"
# Histogram, USD: the summed cost of the priced calls under one root operation, by operation.
COST_PER_OPERATION = names.COST_PER_OPERATION
# From a fraction of a cent (one embedding) to tens of dollars (a long agent run).
COST_PER_OPERATION_BUCKETS = (0.00001, 0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 50.0)
OPERATION_LIMIT = 100  # distinct root operation names on the histogram before _other

DEFAULT_CATEGORIES = {
    "compute": "infrastructure",
    "storage": "infrastructure",
    "network": "infrastructure",
    "api_call": "services",
    "model_inference": "models",
    "training": "models",
    "execution": "trading",
    "external_api": "external",
}

# record_cost keywords that stand for a semantic-convention attribute.
FRIENDLY_KEYS = {
    "model": names.GEN_AI_REQUEST_MODEL,
    "provider": names.GEN_AI_PROVIDER_NAME,
    "token_type": names.GEN_AI_TOKEN_TYPE,
    "exchange": names.TRADING_EXCHANGE,
    "host": names.SERVER_ADDRESS,
}


class CardinalityGuard:
    """Lets through the first ``limit`` distinct values, then maps new ones to ``_other`` (warned once)."""

    def __init__(self, name: str, limit: int):
        self.name, self.limit = name, limit
        self._seen: set[str] = set()
        self._warned = False
        self._lock = ForkSafeLock()

    def __call__(self, value: Any) -> str:
        text = str(value)
        if text in self._seen:
            return text
        with self._lock:
            if len(self._seen) < self.limit:
                self._seen.add(text)
                return text
            if not self._warned:
                self._warned = True
                _logger.warning("otel-monitoring: more than %d distinct %s values on otel_monitoring.cost; "
                                "new ones are recorded as %s (raise OTEL_MONITORING_COST_ATTRIBUTE_LIMIT)",
                                self.limit, self.name, OTHER)
        return OTHER


class CostMeter:
    """Records costs on one meter provider, checks budgets, keeps running totals for summaries."""

    def __init__(self, meter_provider: Any = None, prices: PriceTable | None = None,
                 budgets: BudgetTracker | None = None, user_attribute: str | None = None, user_limit: int = 100):
        self.prices = prices if prices is not None else load_prices()
        self.budgets = budgets or BudgetTracker()
        self.user_attribute = user_attribute
        self._user_guard = CardinalityGuard(user_attribute or "user", user_limit)
        meter = get_meter(SCOPE, __version__, meter_provider)
        self._cost = meter.create_counter(
            names.COST, unit="USD",
            description="Money spent, by cost.type and cost.category (and model, exchange or host).")
        self._per_operation = meter.create_histogram(
            COST_PER_OPERATION, unit="USD",
            description="Cost of the LLM, embedding, trading and paid API calls made under one root operation "
                        "(an API request, a RAG query), recorded when it ends.",
            explicit_bucket_boundaries_advisory=list(COST_PER_OPERATION_BUCKETS))
        self._operation_guard = CardinalityGuard(names.OPERATION, OPERATION_LIMIT)
        self._unpriced = meter.create_counter(
            names.COST_UNPRICED, unit="{event}",
            description="Costs that could not be priced (unknown model, exchange or currency): never a silent zero.")
        self._warned: set[tuple[str, str]] = set()
        self._lock = ForkSafeLock()
        self.totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)  # (cost.type, source) -> USD
        self.unpriced_totals: dict[tuple[str, str], int] = defaultdict(int)  # (reason, name) -> count

    def record(self, amount: Decimal | float, cost_type: str, category: str | None = None,
               attributes: Mapping[str, Any] | None = None, user: Any = None, counter: bool = True) -> None:
        """Add ``amount`` USD. ``attributes`` are semantic-convention keys (model, exchange, host ...).
        ``counter=False``: the budgets and totals only (the counter already has it)."""
        amount = amount if isinstance(amount, Decimal) else Decimal(repr(float(amount)))
        category = category or DEFAULT_CATEGORIES.get(cost_type, "other")
        attrs: dict[str, Any] = {names.COST_TYPE: cost_type, names.COST_CATEGORY: category}
        attrs.update({k: v for k, v in (attributes or {}).items() if v is not None})
        if user is not None:
            if self.user_attribute:
                attrs[self.user_attribute] = self._user_guard(user)
            else:
                _warn_once("user-without-attribute", "otel-monitoring: a cost came with a user or tenant but "
                           "OTEL_MONITORING_COST_ATTRIBUTE names no attribute for it (e.g. tenant.id); it is "
                           "recorded without one")
        if counter:
            self._cost.add(float(amount), attrs)
        source = next((str(attrs[k]) for k in (names.GEN_AI_REQUEST_MODEL, names.TRADING_EXCHANGE, names.SERVER_ADDRESS)
                       if k in attrs), category)
        with self._lock:
            self.totals[(cost_type, source)] += amount
        self.budgets.add(amount, cost_type, category)

    def record_operation(self, amount: Decimal, operation: str, user: Any = None) -> None:
        """One root operation's summed cost (``otel_monitoring.cost.per_operation``)."""
        attrs: dict[str, Any] = {names.OPERATION: self._operation_guard(operation)}
        if user is not None and self.user_attribute:
            attrs[self.user_attribute] = self._user_guard(user)
        self._per_operation.record(float(amount), attrs)

    def unpriced(self, cost_type: str, reason: str, name: str, attributes: Mapping[str, Any] | None = None) -> None:
        """Count a cost with no price; warn once per (reason, name) with the fix."""
        attrs = {names.COST_TYPE: cost_type, names.COST_UNPRICED_REASON: reason, **(attributes or {})}
        self._unpriced.add(1, attrs)
        key = (reason, name)
        with self._lock:
            self.unpriced_totals[key] += 1
            first = key not in self._warned
            self._warned.add(key)
        if first:
            _logger.warning("otel-monitoring: no price for %s %r (%s); its costs are counted on "
                            "otel_monitoring.cost.unpriced, not as zero. Add it to your price table "
                            "(OTEL_MONITORING_PRICES, see docs/cost.md).", reason.replace("_", " "), name, cost_type)

    # --- the priced sources ---

    def record_llm(self, model: str, input_tokens: int = 0, output_tokens: int = 0, cached_input_tokens: int = 0,
                   cache_write_tokens: int = 0, operation: str | None = None, provider: str | None = None,
                   user: Any = None) -> Decimal | None:
        """Price one model call. Input tokens include the cached ones (as the GenAI conventions count them)."""
        resolved = self.prices.resolve_model(model)
        base = {names.GEN_AI_PROVIDER_NAME: provider}
        if resolved is None:
            self.unpriced("model_inference", "unknown_model", model, {**base, names.GEN_AI_REQUEST_MODEL: model})
            return None
        base[names.GEN_AI_REQUEST_MODEL] = resolved
        if resolved in self.prices.embeddings and (operation == "embeddings" or resolved not in self.prices.llm):
            parts = {"input": input_tokens * self.prices.embeddings[resolved] / MILLION}
        else:
            price = self.prices.llm[resolved]
            cached = min(cached_input_tokens, input_tokens)
            written = min(cache_write_tokens, input_tokens - cached)
            plain = input_tokens - cached - written
            parts = {
                "input": (plain * price.input + written * (price.cache_write_input or price.input)) / MILLION,
                "cached_input": cached * (price.cached_input if price.cached_input is not None else price.input) / MILLION,
                "output": output_tokens * price.output / MILLION,
            }
        total = Decimal(0)
        for token_type, amount in parts.items():
            if amount:
                self.record(amount, "model_inference", attributes={**base, names.GEN_AI_TOKEN_TYPE: token_type}, user=user)
                total += amount
        return total

    def to_usd(self, amount: Decimal, currency: str | None) -> Decimal | None:
        rate = self.prices.usd_per_unit(currency)
        return None if rate is None else amount * rate

    def record_api_call(self, host: str, path: str | None = None, user: Any = None) -> Decimal | None:
        """Price one call to a host in the table's external_apis; None (and nothing recorded) if it is not there."""
        price = self.prices.api_call_price(host, path)
        if price is None:
            return None
        self.record(price, "external_api", attributes={names.SERVER_ADDRESS: host.lower()}, user=user)
        return price


EARLY_COST_LIMIT = 10_000  # costs kept from before configure(): a process that never calls it stays flat


class _EarlyCostMeter(CostMeter):
    """The meter of the costs recorded before ``configure()`` (a cost at import time): it keeps them
    and hands them to the component's meter at start, so they count in ``otel_monitoring.cost`` and
    in the budgets like any later cost rather than going to the API's no-op meter and no budget."""

    def __init__(self) -> None:
        super().__init__()
        self._kept: list[tuple[Any, ...]] = []
        self._target: CostMeter | None = None
        self._early_lock = ForkSafeLock()

    def record(self, amount: Decimal | float, cost_type: str, category: str | None = None,
               attributes: Mapping[str, Any] | None = None, user: Any = None, counter: bool = True) -> None:
        with self._early_lock:  # kept and recorded as one step: a hand-over sees both or neither
            target = self._target
            if target is None:
                # An SDK meter provider set by the application already counts it; the API's own does not.
                counted = _sdk_meter_provider_set()
                if len(self._kept) < EARLY_COST_LIMIT:
                    self._kept.append((amount, cost_type, category, attributes, user, counted))
                elif not counted:
                    _warn_once("early-costs", "otel-monitoring: more than %d costs recorded before configure(); "
                               "later ones are not counted in the budgets. Call otel_monitoring.configure() "
                               "before recording costs.", EARLY_COST_LIMIT)
                super().record(amount, cost_type, category, attributes, user, counter)
                return
        target.record(amount, cost_type, category, attributes, user, counter)  # a reference from before

    def hand_over(self, meter: CostMeter) -> None:
        with self._early_lock:
            kept, self._kept, self._target = self._kept, [], meter
        for amount, cost_type, category, attributes, user, counted in kept:
            meter.record(amount, cost_type, category, attributes, user, counter=not counted)


def _sdk_meter_provider_set() -> bool:
    from opentelemetry import metrics
    from opentelemetry.sdk.metrics import MeterProvider

    return isinstance(metrics.get_meter_provider(), MeterProvider)


# The meter record_cost uses: the component installs its own at start.
_current: Current[CostMeter] = Current(_EarlyCostMeter)
current_cost_meter = _current.get


def install(meter: CostMeter | None) -> None:
    """Make ``meter`` the one record_cost uses; the costs recorded before it go to it."""
    early = _current.value
    _current.install(meter)
    if meter is not None and isinstance(early, _EarlyCostMeter):
        early.hand_over(meter)


_warned_inputs: set[str] = set()


def _warn_once(key: str, message: str, *args: Any, **kwargs: Any) -> None:
    if key not in _warned_inputs:
        _warned_inputs.add(key)
        _logger.warning(message, *args, **kwargs)


def record_cost(amount_usd: float | Decimal, cost_type: str, *, category: str | None = None,
                attributes: Mapping[str, Any] | None = None, user: Any = None, **friendly: Any) -> None:
    """Record a cost by hand: ``record_cost(0.25, "external_api", host="api.example.com")``.

    ``cost_type`` is one of compute, storage, network, api_call, model_inference, training,
    execution, external_api. Keywords ``model``, ``provider``, ``exchange``, ``host`` and
    ``token_type`` become their semantic-convention attributes; ``attributes`` takes any other
    (low-cardinality) ones; ``user`` is the user or tenant, kept behind the cardinality limit.
    Never raises: a bad amount is logged once and dropped.
    """
    try:
        number = float(amount_usd)
        if math.isnan(number) or math.isinf(number) or number < 0:
            _warn_once(f"amount:{cost_type}", "otel-monitoring: record_cost(%r, %r) ignored: the amount must be "
                       "a finite number of USD >= 0", amount_usd, cost_type)
            return
        if cost_type not in COST_TYPES:
            _warn_once(f"type:{cost_type}", "otel-monitoring: record_cost cost_type %r is not one of %s; recorded "
                       "as given", cost_type, ", ".join(COST_TYPES))
        attrs = {FRIENDLY_KEYS.get(k, k): v for k, v in friendly.items()}
        attrs.update(attributes or {})
        amount = amount_usd if isinstance(amount_usd, Decimal) else Decimal(repr(number))
        current_cost_meter().record(amount, cost_type, category=category, attributes=attrs, user=user)
    except Exception:  # noqa: BLE001 - recording a cost must never break the caller
        _warn_once("record_cost:error", "otel-monitoring: record_cost failed", exc_info=True)


def record_compute_cost(cpu_seconds: float, **attributes: Any) -> None:
    """Price CPU-seconds at the table's compute.cpu_second and record them as cost.type compute."""
    meter = current_cost_meter()
    price = meter.prices.compute.get("cpu_second")
    if price is None:
        meter.unpriced("compute", "unknown_compute_price", "cpu_second")
        return
    record_cost(Decimal(repr(float(cpu_seconds))) * price, "compute", **attributes)
