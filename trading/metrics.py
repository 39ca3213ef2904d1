"""`nexus_trading_breaker_open{venue}`: 1 while a venue's circuit breaker is open (trading/exchanges/breaker.py),
read from the shared cache at scrape time. Registered by TradingConfig.ready()."""

from __future__ import annotations

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

NAME, HELP = "nexus_trading_breaker_open", "1 while the venue's circuit breaker is open (calls refused)."


class BreakerCollector(Collector):
    def describe(self):
        yield GaugeMetricFamily(NAME, HELP, labels=["venue"])

    def collect(self):
        from trading.choices import Venue
        from trading.exchanges.breaker import breaker_health

        family = GaugeMetricFamily(NAME, HELP, labels=["venue"])
        for venue in Venue.values:
            if venue == "paper":
                continue
            try:
                family.add_metric([venue], 1 if breaker_health(venue=venue).degraded else 0)
            except Exception:  # noqa: BLE001 - the cache is down: no sample, Redis's own alert fires
                return
        yield family
