"""Prometheus metrics of the AI companion's model providers (served at /metrics by the web process and by the
bot process). Registered once per process: importing this module again (autoreload, importlib.reload) hands
back the collectors already registered instead of failing on a duplicate name.
"""

from __future__ import annotations

from typing import Any, TypeVar

from prometheus_client import REGISTRY, Counter, Histogram

_C = TypeVar("_C", Counter, Histogram)


def _collector(
    kind: type[_C], name: str, documentation: str, labelnames: tuple[str, ...], **kwargs: Any
) -> _C:
    existing = REGISTRY._names_to_collectors.get(name)  # the registry keeps no public lookup by name
    if existing is not None:
        if not isinstance(existing, kind):
            raise TypeError(f"metric {name} is already registered as a {type(existing).__name__}")
        return existing
    return kind(name, documentation, labelnames, **kwargs)


AI_TOKENS = _collector(
    Counter,
    "nexus_ai_tokens",
    "Tokens reported by the model provider, by kind (prompt or completion).",
    ("provider", "model", "kind"),
)
AI_PROVIDER_LATENCY = _collector(
    Histogram,
    "nexus_ai_provider_latency_seconds",
    "One model turn, from the request to the parsed answer, retries included, by outcome.",
    ("provider", "outcome"),
    buckets=(0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60, 120),
)
AI_PROVIDER_ERRORS = _collector(
    Counter,
    "nexus_ai_provider_errors",
    "Model turns that ended in a ProviderError, by reason.",
    ("provider", "reason"),
)
