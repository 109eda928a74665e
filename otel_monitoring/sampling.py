"""The trace sampler named by OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG (validated in config)."""

from __future__ import annotations

from opentelemetry.sdk.trace import sampling

from .config import Settings


def build_sampler(settings: Settings) -> sampling.Sampler:
    ratio = 1.0 if settings.sampler_arg is None else settings.sampler_arg
    name = settings.sampler
    if name == "always_on":
        return sampling.ALWAYS_ON
    if name == "always_off":
        return sampling.ALWAYS_OFF
    if name == "traceidratio":
        return sampling.TraceIdRatioBased(ratio)
    if name == "parentbased_always_off":
        return sampling.ParentBased(sampling.ALWAYS_OFF)
    if name == "parentbased_traceidratio":
        return sampling.ParentBased(sampling.TraceIdRatioBased(ratio))
    return sampling.ParentBased(sampling.ALWAYS_ON)
