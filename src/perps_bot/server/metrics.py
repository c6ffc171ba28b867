"""Where `/metrics` gets its metrics: one function, so the registry can be pointed at
the metric definitions of `perps_bot.monitoring.prometheus` when they land. Until then
it is prometheus-client's default registry (the process's metrics, and whatever the
bot registers there)."""

from prometheus_client import REGISTRY, CollectorRegistry


def metrics_registry() -> CollectorRegistry:
    return REGISTRY
