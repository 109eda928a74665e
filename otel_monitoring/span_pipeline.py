"""The tracer provider's span processor list, calling only the hooks a processor implements.

The SDK's ``SynchronousMultiSpanProcessor`` calls ``on_start``, ``_on_ending`` and ``on_end`` of
every processor for every span, although most of them do nothing in most of those hooks (the batch
processor only acts in ``on_end``, the GenAI marker only in ``on_start``, the cost processor only
in ``on_end``): six calls of empty methods per span on the application's thread. This one keeps
the same list, order and behaviour, and skips the hooks that are the base class's or an empty
``pass``. ``configure()`` hands it to the ``TracerProvider`` (its ``active_span_processor``
argument), so processors added later, by the application too, go through it.
"""

from __future__ import annotations

from typing import Any

from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, SynchronousMultiSpanProcessor

__all__ = ["LeanMultiSpanProcessor"]


def _empty() -> None:
    pass


_EMPTY = (_empty.__code__.co_code, _empty.__code__.co_consts)


def _implements(processor: SpanProcessor, hook: str) -> bool:
    method = getattr(type(processor), hook, None)
    if method is None:
        return True  # not a SpanProcessor subclass (a mock, a duck-typed one): always called
    if method is getattr(SpanProcessor, hook, None):
        return False
    code = getattr(method, "__code__", None)
    return code is None or (code.co_code, code.co_consts) != _EMPTY  # ``pass`` (a docstring aside)


class LeanMultiSpanProcessor(SynchronousMultiSpanProcessor):
    """``SynchronousMultiSpanProcessor`` calling, per span, only the hooks that do something."""

    def __init__(self) -> None:
        super().__init__()
        self._hooks: tuple[tuple[Any, ...], tuple[Any, ...], tuple[Any, ...]] = ((), (), ())

    def add_span_processor(self, span_processor: SpanProcessor) -> None:
        with self._lock:
            processors = self._span_processors + (span_processor,)
            # one tuple swapped at once: a span in flight sees the old set or the new, never half
            self._hooks = tuple(tuple(getattr(p, hook) for p in processors if _implements(p, hook))
                                for hook in ("on_start", "_on_ending", "on_end"))  # type: ignore[assignment]
            self._span_processors = processors

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        for on_start in self._hooks[0]:
            on_start(span, parent_context=parent_context)

    def _on_ending(self, span: Span) -> None:
        for on_ending in self._hooks[1]:
            on_ending(span)

    def on_end(self, span: ReadableSpan) -> None:
        for on_end in self._hooks[2]:
            on_end(span)
