"""Prometheus metrics read from shared state at scrape time, so every web process's /metrics shows the same
deployment-wide values (alert on max() over the processes): the Celery queues' depth, read from the broker.

Registered once per process by CoreConfig.ready(); `describe()` keeps registration from touching Redis."""

from __future__ import annotations

import contextlib

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector


class CeleryQueueCollector(Collector):
    """`nexus_celery_queue_length{queue}`: messages waiting in each queue the Celery app declares."""

    def describe(self):
        yield GaugeMetricFamily("nexus_celery_queue_length", "Messages waiting in a Celery queue.", labels=["queue"])

    def collect(self):
        import redis
        from celery import current_app
        from django.conf import settings

        family = GaugeMetricFamily(
            "nexus_celery_queue_length", "Messages waiting in a Celery queue.", labels=["queue"]
        )
        prefix = settings.CELERY_BROKER_TRANSPORT_OPTIONS.get("global_keyprefix", "")
        queues = sorted(current_app.amqp.queues) or [current_app.conf.task_default_queue]
        try:
            client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=2, socket_connect_timeout=2)
            with client.pipeline(transaction=False) as pipe:
                for queue in queues:
                    pipe.llen(f"{prefix}{queue}")
                lengths = pipe.execute()
            client.close()
        except redis.RedisError:
            return  # no sample: the broker is down, which its own alert reports
        for queue, length in zip(queues, lengths, strict=True):
            family.add_metric([queue], length)
        yield family


def collectors_register(*collectors: Collector) -> None:
    """Register each collector once (a second ready() in the same process is a no-op)."""
    for collector in collectors:
        with contextlib.suppress(ValueError):  # already registered by this process
            REGISTRY.register(collector)
