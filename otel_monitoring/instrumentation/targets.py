"""The zero-code targets file: your own functions traced by name, no code change.

    # otel-targets.yaml (OTEL_MONITORING_TARGETS=otel-targets.yaml, or configure(targets=...))
    targets:
      - target: mybot.strategy:Strategy.decide   # module:qualified.name
        domain: trading                          # trading | rag | api | custom (default)
        component: strategy                      # default: the class (or module) name
        operation: decide                        # default: the function name
        kind: internal                           # internal | client | server | producer | consumer
        attributes:                              # span attributes: parameter, self or result paths
          trading.symbol: symbol
          trading.signal.side: result.side
        metric_attributes:                       # few, bounded values only: they label the metrics
          trading.exchange: self.exchange_id

A path is a root (a parameter name, ``self`` or ``result``) followed by ``.attribute`` or
``[key]`` steps. Entries are applied by wrapt post-import hooks: when the module is imported,
now or later, which also works under ``opentelemetry-instrument``. A bad entry is reported with
its line, number, target, the problem and the fix, and skipped; what start-up can find is reported
then, in file order. The application starts anyway unless strict mode
(``OTEL_MONITORING_TARGETS_STRICT``) asks for an error, which then lists every problem.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import inspect
import logging
import re
import sys
from dataclasses import dataclass
from typing import Any, Callable, Collection

import wrapt
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor
from opentelemetry.trace import SpanKind

from .. import policy
from ..config import ConfigError
from ..userfiles import load_file
from .core import Operation, Patcher, Telemetry, settings_from
from .. import names

__all__ = ["TargetsInstrumentor", "TargetEntry", "load_targets", "TargetError"]

_logger = logging.getLogger("otel_monitoring.instrumentation")

SCOPE = "otel_monitoring.instrumentation.targets"
DOMAINS = ("trading", "rag", "api", "custom")
KINDS = {"internal": SpanKind.INTERNAL, "client": SpanKind.CLIENT, "server": SpanKind.SERVER,
         "producer": SpanKind.PRODUCER, "consumer": SpanKind.CONSUMER}
KEYS = {"target", "domain", "component", "operation", "kind", "attributes", "metric_attributes"}

_TARGET = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_ROOT = re.compile(r"^([A-Za-z_]\w*)")
_STEP = re.compile(r"\.([A-Za-z_]\w*)|\[\s*(?:'([^']*)'|\"([^\"]*)\"|(-?\d+))\s*\]")
_MISSING = object()


ENTRY_SKIPPED = "The entry is skipped; the application goes on without it."
FILE_IGNORED = ("The whole targets file is ignored: no function is traced from it; the application goes on "
                "without it. Fix the file (or unset OTEL_MONITORING_TARGETS) and restart.")


class TargetError(ConfigError):
    """A bad targets file or entry; the message names the file, the entry and its line, the problem and the fix."""


@dataclass(frozen=True)
class Path:
    """``root.step[key]``: reads a value from the call's arguments, ``self`` or the result."""

    text: str
    root: str
    steps: tuple[tuple[str, Any], ...]  # ("attr", name) | ("item", key)

    @classmethod
    def parse(cls, text: Any) -> "Path":
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"{text!r} is not a path (write a parameter name, self.x or result.y)")
        text = text.strip()
        root = _ROOT.match(text)
        if root is None:
            raise ValueError(f"{text!r} does not start with a parameter name, self or result")
        position, steps = root.end(), []
        while position < len(text):
            step = _STEP.match(text, position)
            if step is None:
                raise ValueError(f"{text!r}: cannot read {text[position:]!r} (use .name or [key])")
            if step.group(1) is not None:
                steps.append(("attr", step.group(1)))
            else:
                key = next(g for g in step.groups()[1:] if g is not None)
                steps.append(("item", int(key) if step.group(4) is not None else key))
            position = step.end()
        return cls(text, root.group(1), tuple(steps))

    def read(self, value: Any) -> Any:
        for kind, key in self.steps:
            if value is None:
                return None
            if kind == "attr":
                value = value.get(key) if isinstance(value, dict) else getattr(value, key, None)
            else:
                try:
                    value = value[key]
                except (KeyError, IndexError, TypeError):
                    return None
        return value


@dataclass(frozen=True)
class TargetEntry:
    number: int  # 1-based position in the file, for messages
    target: str
    module: str
    qualname: str
    domain: str
    component: str | None
    operation: str | None
    kind: SpanKind
    attributes: dict[str, Path]
    metric_attributes: dict[str, Path]
    line: int | None = None  # where the entry starts in the file

    def describe(self, source: str) -> str:
        line = f"line {self.line}, " if self.line else ""
        return f"targets file {source}, {line}entry {self.number} ({self.target})"


def _parse_entry(number: int, raw: Any, source: str, line: int | None = None) -> TargetEntry:
    where = f"targets file {source}, {f'line {line}, ' if line else ''}entry {number}"
    if isinstance(raw, str):
        raw = {"target": raw}
    if not isinstance(raw, dict):
        raise TargetError(f"{where}: expected a mapping with a 'target' key, got {type(raw).__name__}. "
                          "Fix: write '- target: package.module:Class.method'.")
    target = raw.get("target")
    where = f"{where} ({str(target)[:200]})" if target else where
    unknown = sorted((set(raw) - KEYS), key=str)
    if unknown:
        raise TargetError(f"{where}: unknown key(s) {', '.join(str(k)[:40] for k in unknown[:5])}. Fix: use only "
                          f"{', '.join(sorted(KEYS))}.")
    if not isinstance(target, str) or not _TARGET.match(target.strip()):
        raise TargetError(f"{where}: target {target!r} is not 'package.module:Class.method' or "
                          "'package.module:function'. Fix: name the module, a colon, then the attribute path.")
    module, _, qualname = target.strip().partition(":")
    domain = raw.get("domain", "custom")
    if not isinstance(domain, str) or domain not in DOMAINS:
        raise TargetError(f"{where}: domain {str(domain)[:40]!r} is not one of {', '.join(DOMAINS)}. "
                          "Fix: pick one of them.")
    kind = raw.get("kind", "internal")
    if not isinstance(kind, str) or kind.lower() not in KINDS:
        raise TargetError(f"{where}: kind {str(kind)[:40]!r} is not one of {', '.join(KINDS)}. Fix: pick one of them.")
    kind = kind.lower()
    paths: dict[str, dict[str, Path]] = {}
    for key in ("attributes", "metric_attributes"):
        mapping = raw.get(key) or {}
        if not isinstance(mapping, dict):
            raise TargetError(f"{where}: {key} must map attribute names to paths, e.g. 'trading.symbol: symbol'.")
        try:
            paths[key] = {str(name): Path.parse(expression) for name, expression in mapping.items()}
        except ValueError as problem:
            raise TargetError(f"{where}: bad expression in {key}: {problem}. Fix: write a parameter name, "
                              "self or result, followed by .name or [key] steps.") from None
    for name, path in paths["metric_attributes"].items():
        if path.root == "result":
            raise TargetError(f"{where}: metric attribute {name[:80]!r} reads the result; metric attributes come "
                              "from the call's arguments only. Fix: move it under 'attributes'.")
    for key in ("component", "operation"):
        if raw.get(key) is not None and (not isinstance(raw[key], str) or not raw[key]):
            raise TargetError(f"{where}: {key} must be a non-empty string. Fix: write a name or leave the key out.")
    return TargetEntry(number, target.strip(), module, qualname, domain, raw.get("component"), raw.get("operation"),
                       KINDS[kind], paths["attributes"], paths["metric_attributes"], line)


def module_exists(name: str) -> bool:
    """Whether ``package.sub.module`` can be imported, found without importing anything (a parent
    package's import could run application code before the application does)."""
    if name in sys.modules:
        return True
    parts = name.split(".")
    try:
        spec = importlib.util.find_spec(parts[0]) if parts[0] not in sys.modules else sys.modules[parts[0]].__spec__
    except (ImportError, ValueError):
        return False
    for part in parts[1:]:
        locations = getattr(spec, "submodule_search_locations", None) if spec is not None else None
        if not locations:
            return False
        spec = importlib.machinery.PathFinder.find_spec(part, list(locations))
    return spec is not None


def load_targets(path: str, check_sources: bool = False) -> tuple[list[TargetEntry], list[str]]:
    """Parse the file: (good entries, messages about bad ones, in file order). With ``check_sources``
    an entry that the source of its module (not imported yet) proves wrong is a problem too; nothing
    is imported. Raises TargetError if the file itself is bad."""
    entries, problems = _load_targets(path, check_sources)
    return entries, [message for _, message in problems]


def _load_targets(path: str, check_sources: bool) -> tuple[list[TargetEntry], list[tuple[int, str]]]:
    """load_targets() with each problem's entry number, to merge with problems found later."""
    loaded = load_file(path, "targets file", error=TargetError, fmt="yaml",
                       fix="set OTEL_MONITORING_TARGETS to an existing YAML file")
    document = loaded.data
    raw_entries = document.get("targets") if isinstance(document, dict) else document
    if not isinstance(raw_entries, list):
        raise TargetError(f"targets file {path}: expected a 'targets:' list of entries. "
                          "Fix: start the file with 'targets:' and one '- target: module:Class.method' per line.")
    if check_sources:
        from .targets_static import static_problem
    entries, problems = [], []
    for index, raw in enumerate(raw_entries):
        number = index + 1
        try:
            entry = _parse_entry(number, raw, path, loaded.line(raw_entries, index))
        except TargetError as problem:
            problems.append((number, str(problem)))
            continue
        if not module_exists(entry.module):
            problems.append((number, f"{entry.describe(path)}: unknown module {entry.module!r} (not importable). "
                                     "Fix: check the module name and that its package is installed."))
            continue
        if check_sources and entry.module not in sys.modules:
            try:
                found = static_problem(entry, path)
            except Exception:  # noqa: BLE001 - a source the parser chokes on is left to the import-time check
                found = None
            if found is not None:
                problems.append((number, found))
                continue
        entries.append(entry)
    return entries, problems


# --- applying an entry to a module ---


def _resolve(module: Any, entry: TargetEntry, source: str) -> tuple[Any, str, Any]:
    """(owner, attribute name, raw attribute) for the entry's qualified name."""
    owner: Any = module
    parts = entry.qualname.split(".")
    for depth, part in enumerate(parts):
        found = _MISSING
        if inspect.isclass(owner):
            for klass in owner.__mro__:  # the raw descriptor: staticmethod / classmethod as defined
                if part in vars(klass):
                    found = vars(klass)[part]
                    break
        else:
            found = getattr(owner, part, _MISSING)
        if found is _MISSING:
            where = ".".join([entry.module, *parts[:depth]])
            raise TargetError(f"{entry.describe(source)}: {where} has no attribute {part!r}. "
                              "Fix: check the spelling and that it is defined at import time.")
        if depth == len(parts) - 1:
            return owner, part, found
        owner = found
    raise AssertionError("unreachable")


def _parameters(raw: Any, owner: Any) -> list[str]:
    function = getattr(raw, "__func__", raw)
    parameters = list(inspect.signature(function).parameters)
    in_class = inspect.isclass(owner)
    if in_class and not isinstance(raw, staticmethod):
        parameters = parameters[1:]  # self / cls: wrapt passes it as ``instance``
    return parameters


def _reader(path: Path, parameters: list[str], entry: TargetEntry, source: str) -> tuple[str, Callable]:
    """("call" or "result", reader) for one path; checks the root against the signature."""
    if path.root == "result":
        return "result", lambda result, instance, args, kwargs: path.read(result)
    if path.root == "self":
        return "call", lambda instance, args, kwargs: path.read(instance)
    if path.root not in parameters:
        raise TargetError(f"{entry.describe(source)}: {path.text!r} names no parameter of {entry.qualname} "
                          f"(parameters: {', '.join(parameters) or 'none'}). Fix: use one of them, self or result.")
    position = parameters.index(path.root)

    def read(instance: Any, args: tuple, kwargs: dict) -> Any:
        value = args[position] if position < len(args) else kwargs.get(path.root)
        return path.read(value)

    return "call", read


def _attribute_value(value: Any) -> Any:
    if isinstance(value, (str, bool, int, float)):
        return value
    return None if value is None else str(value)


def _operation(entry: TargetEntry, owner: Any, raw: Any, source: str) -> Operation:
    parameters = _parameters(raw, owner)
    call_readers, result_readers, metric_readers = [], [], []
    for name, path in entry.attributes.items():
        when, read = _reader(path, parameters, entry, source)
        (call_readers if when == "call" else result_readers).append((name, read))
    for name, path in entry.metric_attributes.items():  # never the result: _parse_entry refuses that
        metric_readers.append((name, _reader(path, parameters, entry, source)[1]))

    def call_attributes(instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
        values = {name: _attribute_value(read(instance, args, kwargs)) for name, read in call_readers}
        return {k: v for k, v in values.items() if v is not None}

    def result_attributes(result: Any, instance: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
        values = {name: _attribute_value(read(result, instance, args, kwargs)) for name, read in result_readers}
        return {k: v for k, v in values.items() if v is not None}

    def metric_attributes(instance: Any, args: tuple, kwargs: dict) -> tuple:
        return tuple((name, str(read(instance, args, kwargs))) for name, read in metric_readers)

    name = entry.qualname.split(".")
    default_component = name[-2] if len(name) > 1 else entry.module.rpartition(".")[2]
    return Operation(
        domain=entry.domain, component=entry.component or default_component, operation=entry.operation or name[-1],
        kind=entry.kind, span_attributes={names.CODE_FUNCTION_NAME: f"{entry.module}.{entry.qualname}"},
        call_attributes=call_attributes if call_readers else None,
        result_attributes=result_attributes if result_readers else None,
        call_metric_attributes=metric_attributes if metric_readers else None,
    )


class TargetsInstrumentor(BaseInstrumentor):
    """Applies the targets file (``OTEL_MONITORING_TARGETS`` or ``targets=``) when each module is imported."""

    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        settings = settings_from(kwargs)
        self._source = kwargs.get("targets") or settings.targets
        self._strict = bool(kwargs.get("strict", settings.targets_strict or getattr(settings, "strict", False)))
        self._patcher = Patcher()
        self._active = True
        self._generation: object | None = object()
        self.problems: list[str] = []
        self.applied: list[str] = []
        if not self._source:
            return
        self._telemetry = Telemetry(SCOPE, kwargs.get("tracer_provider"), kwargs.get("meter_provider"))
        try:
            # What the sources of modules not imported yet prove wrong is found now, importing
            # nothing: in strict mode, raising later inside the application's import would break
            # the application; otherwise the problem is at least reported with the others.
            entries, problems = _load_targets(self._source, check_sources=True)
        except TargetError as problem:
            self._report(str(problem), consequence=FILE_IGNORED)
            return
        by_module: dict[str, list[TargetEntry]] = {}
        for entry in entries:
            by_module.setdefault(entry.module, []).append(entry)
        for module_name, module_entries in by_module.items():
            if module_name in sys.modules:
                problems += self._apply(sys.modules[module_name], module_entries)
            else:
                wrapt.register_post_import_hook(
                    lambda module, found=module_entries, generation=self._generation:
                        self._on_import(module, found, generation), module_name)
        self._report_all(problems, at_start=True)

    def _on_import(self, module: Any, entries: list[TargetEntry], generation: object) -> None:
        # wrapt keeps a hook for good: one from a start that failed (or was undone) does nothing.
        if generation is self._generation:
            self._report_all(self._apply(module, entries), at_start=False)

    def _report_all(self, problems: list[tuple[int, str]], at_start: bool) -> None:
        """Report the problems in file order; strict mode at start-up raises one error carrying them all."""
        messages = [message for _, message in sorted(problems, key=lambda found: found[0])]
        if self._strict and at_start and messages:
            self.problems += messages
            # configure() fails: nothing of the file stays applied, or applies at a later import.
            self._generation = None
            self._patcher.restore()
            self.applied = []
            combined = messages[0] if len(messages) == 1 else (
                f"{len(messages)} problems in targets file {self._source}, in file order:\n  - "
                + "\n  - ".join(messages) + "\n")
            policy.report(combined, strict=True)
        for message in messages:
            self._report(message, at_start=at_start)

    def _report(self, message: str, at_start: bool = True, consequence: str = ENTRY_SKIPPED) -> None:
        self.problems.append(message)
        policy.report(message, strict=self._strict, at_start=at_start, consequence=consequence)

    def _apply(self, module: Any, entries: list[TargetEntry]) -> list[tuple[int, str]]:
        """Wrap the module's entries; the problems of those that cannot be, with their entry numbers."""
        problems: list[tuple[int, str]] = []
        if not self._active:
            return problems
        for entry in entries:
            try:
                owner, name, raw = _resolve(module, entry, self._source)
                if not callable(getattr(raw, "__func__", raw)):
                    raise TargetError(f"{entry.describe(self._source)}: {entry.qualname} is a "
                                      f"{type(raw).__name__}, not a function or method. Fix: name a function.")
                operation = _operation(entry, owner, raw, self._source)
                self._patcher.wrap(owner, name, operation, self._telemetry, inherited=raw)
                self.applied.append(entry.target)
            except TargetError as problem:
                problems.append((entry.number, str(problem)))
            except (TypeError, ValueError) as problem:  # inspect.signature on a builtin, for one
                problems.append((entry.number, f"{entry.describe(self._source)}: cannot be wrapped ({problem}). "
                                               "Fix: name a Python function or method."))
        return problems

    def _uninstrument(self, **kwargs: Any) -> None:
        self._active = False
        self._patcher.restore()
