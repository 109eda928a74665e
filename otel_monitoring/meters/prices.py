"""The price table: the packaged ``data/prices.yaml`` with an optional user file merged over it.

Amounts are ``Decimal`` (parsed from the file's text), so sums of many small costs stay exact.
A bad file raises ``PriceTableError`` naming the file, the key and the fix; nothing is fetched
from the network.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from importlib import resources
from typing import Any, Mapping

from ..config import ConfigError
from ..userfiles import load_file
from .locks import ForkSafeLock

SECTIONS = ("llm", "embeddings", "aliases", "exchanges", "fx", "external_apis", "compute")
LLM_FIELDS = ("input", "output", "cached_input", "cache_write_input")
MILLION = Decimal(1_000_000)

# Names that providers and gateways put before a model name: "openai/gpt-4o", "models/gemini-1.5-pro",
# Bedrock's "anthropic.claude-3-5-sonnet-20241022-v2:0" and cross-region "us.anthropic....".
_DOT_PREFIXES = {"anthropic", "meta", "amazon", "cohere", "mistral", "ai21", "us", "eu", "apac", "global"}
# What may follow a known model name and still be that model: dates, versions, "latest".
_VERSION_SUFFIX = re.compile(r"^(?:[-@:](?:\d{4}-\d{2}-\d{2}|\d+|v\d+|latest))+$")


class PriceTableError(ConfigError):
    """The price table file is unreadable or has a bad entry."""


@dataclass(frozen=True)
class ModelPrice:
    """USD per 1M tokens."""

    input: Decimal
    output: Decimal
    cached_input: Decimal | None = None
    cache_write_input: Decimal | None = None


@dataclass
class PriceTable:
    llm: dict[str, ModelPrice] = field(default_factory=dict)
    embeddings: dict[str, Decimal] = field(default_factory=dict)  # USD per 1M input tokens
    aliases: dict[str, str] = field(default_factory=dict)
    exchanges: dict[str, dict[str, Decimal]] = field(default_factory=dict)  # id -> {maker, taker}
    fx: dict[str, Decimal] = field(default_factory=dict)  # USD per unit
    external_apis: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> {per_call, routes}
    compute: dict[str, Decimal] = field(default_factory=dict)
    sources: tuple[str, ...] = ()
    _resolved: dict[str, str | None] = field(default_factory=dict, repr=False)
    _lock: ForkSafeLock = field(default_factory=ForkSafeLock, repr=False)

    # --- look-ups ---

    def resolve_model(self, name: str) -> str | None:
        """The table's name for ``name`` (provider prefixes, dates and versions removed), or None."""
        cached = self._resolved.get(name, "")
        if cached != "":
            return cached
        resolved = self._resolve(name)
        with self._lock:
            if len(self._resolved) < 10_000:
                self._resolved[name] = resolved
        return resolved

    def _resolve(self, name: str) -> str | None:
        known = self.llm.keys() | self.embeddings.keys()
        candidate = name.strip().lower()
        for _ in range(2):
            if candidate in self.aliases:
                return self.aliases[candidate]
            if candidate in known:
                return candidate
            candidate = candidate.rsplit("/", 1)[-1]
            while "." in candidate and candidate.split(".", 1)[0] in _DOT_PREFIXES:
                candidate = candidate.split(".", 1)[1]
        best = None
        for key in known:
            if candidate.startswith(key) and _VERSION_SUFFIX.match(candidate[len(key):]):
                if best is None or len(key) > len(best):
                    best = key
        return best

    def usd_per_unit(self, currency: str | None) -> Decimal | None:
        return self.fx.get(currency.upper()) if currency else None

    def api_call_price(self, host: str, path: str | None) -> Decimal | None:
        entry = self.external_apis.get(host.lower())
        if entry is None:
            return None
        if path:
            routes: dict[str, Decimal] = entry.get("routes", {})
            matches = [route for route in routes if path == route or path.startswith(route.rstrip("/") + "/")]
            if matches:
                return routes[max(matches, key=len)]
        return entry.get("per_call")


# --- loading ---


def _load_file(path: str) -> dict[str, Any]:
    """One price file through the bounded loader (size cap, UTF-8, no YAML aliases); JSON numbers
    are read as Decimal."""
    loaded = load_file(path, "price table", error=PriceTableError, decimals=True,
                       fix="correct the path in OTEL_MONITORING_PRICES / prices_file, or unset it to use the "
                           "packaged prices")
    data = loaded.data
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise PriceTableError(f"price table {path}: the top level must be a mapping of sections "
                              f"({', '.join(SECTIONS)}). See docs/cost.md.")
    return dict(data)


def _amount(path: str, key: str, value: Any) -> Decimal:
    try:
        if isinstance(value, bool):
            raise InvalidOperation
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        amount = None
    if amount is None or not amount.is_finite() or amount < 0:
        raise PriceTableError(f"price table {path}: {key} = {value!r} is not a price; write a number "
                              f">= 0 (e.g. {key.rsplit('.', 1)[-1]}: 2.5). See docs/cost.md for the units.")
    return amount


def _mapping(path: str, key: str, value: Any) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PriceTableError(f"price table {path}: {key} must be a mapping, got {type(value).__name__}. "
                              "See docs/cost.md.")
    return value


def merge_into(table: PriceTable, data: Mapping[str, Any], path: str) -> None:
    """Validate ``data`` (one file's content) and merge its entries over ``table``'s."""
    unknown = sorted(set(data) - set(SECTIONS) - {"version", "as_of"})
    if unknown:
        raise PriceTableError(f"price table {path}: unknown section(s) {', '.join(map(str, unknown))}; "
                              f"the sections are {', '.join(SECTIONS)}. See docs/cost.md.")
    for model, entry in _mapping(path, "llm", data.get("llm")).items():
        key = f"llm.{model}"
        entry = _mapping(path, key, entry)
        bad = sorted(set(entry) - set(LLM_FIELDS))
        if bad or "input" not in entry or "output" not in entry:
            raise PriceTableError(
                f"price table {path}: {key} needs input and output (USD per 1M tokens) and may have "
                f"cached_input, cache_write_input{'; unknown: ' + ', '.join(bad) if bad else ''}. "
                f"Example: {model}: {{input: 2.5, output: 10}}")
        prices = {f: _amount(path, f"{key}.{f}", entry[f]) for f in LLM_FIELDS if entry.get(f) is not None}
        table.llm[str(model).lower()] = ModelPrice(**prices)
    for model, value in _mapping(path, "embeddings", data.get("embeddings")).items():
        table.embeddings[str(model).lower()] = _amount(path, f"embeddings.{model}", value)
    for alias, target in _mapping(path, "aliases", data.get("aliases")).items():
        table.aliases[str(alias).lower()] = str(target).lower()
    for exchange, entry in _mapping(path, "exchanges", data.get("exchanges")).items():
        key = f"exchanges.{exchange}"
        entry = _mapping(path, key, entry)
        if set(entry) - {"maker", "taker"} or not entry:
            raise PriceTableError(f"price table {path}: {key} takes maker and taker fee rates as fractions "
                                  f"(0.001 = 0.1 %). Example: {exchange}: {{maker: 0.001, taker: 0.001}}")
        rates = {side: _amount(path, f"{key}.{side}", rate) for side, rate in entry.items()}
        if any(rate >= 1 for rate in rates.values()):
            raise PriceTableError(f"price table {path}: {key} has a fee rate of 1 or more; rates are "
                                  "fractions of the notional (0.001 = 0.1 %), not percent.")
        table.exchanges[str(exchange).lower()] = rates
    for currency, value in _mapping(path, "fx", data.get("fx")).items():
        table.fx[str(currency).upper()] = _amount(path, f"fx.{currency}", value)
    for host, entry in _mapping(path, "external_apis", data.get("external_apis")).items():
        key = f"external_apis.{host}"
        if not isinstance(entry, Mapping):
            entry = {"per_call": entry}
        if set(entry) - {"per_call", "routes"}:
            raise PriceTableError(f"price table {path}: {key} takes per_call (USD) and routes "
                                  f"({{path: USD}}). Example: {host}: {{per_call: 0.001}}")
        parsed: dict[str, Any] = {}
        if entry.get("per_call") is not None:
            parsed["per_call"] = _amount(path, f"{key}.per_call", entry["per_call"])
        parsed["routes"] = {str(route): _amount(path, f"{key}.routes.{route}", price)
                            for route, price in _mapping(path, f"{key}.routes", entry.get("routes")).items()}
        table.external_apis[str(host).lower()] = parsed
    for name, value in _mapping(path, "compute", data.get("compute")).items():
        if name != "cpu_second":
            raise PriceTableError(f"price table {path}: compute.{name} is unknown; compute takes cpu_second (USD).")
        table.compute[name] = _amount(path, f"compute.{name}", value)
    unknown_aliases = sorted(a for a, t in table.aliases.items() if t not in table.llm and t not in table.embeddings)
    if unknown_aliases:
        raise PriceTableError(f"price table {path}: alias(es) {', '.join(unknown_aliases)} point to no model in "
                              "llm or embeddings; add the model or fix the alias.")
    table.sources += (path,)


DEFAULT_PRICES = "prices.yaml"


def load_prices(user_file: str | os.PathLike[str] | None = None) -> PriceTable:
    """The packaged table, with ``user_file`` (JSON or YAML) merged over it."""
    table = PriceTable()
    packaged = resources.files("otel_monitoring") / "data" / DEFAULT_PRICES
    with resources.as_file(packaged) as path:
        merge_into(table, _load_file(str(path)), str(path))
    if user_file:
        path = os.fspath(user_file)
        merge_into(table, _load_file(path), path)
    return table
