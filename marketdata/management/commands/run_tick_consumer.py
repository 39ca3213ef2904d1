"""`manage.py run_tick_consumer <name>`: one tick consumer process (revaluation, alerts, matching, or any
other an app registers); see marketdata/tick_consumers.py and docs/market-data.md, "Tick consumers"."""

from __future__ import annotations

import signal

import structlog
from django.core.management.base import BaseCommand, CommandError

from config.celery import keep_worker_connections
from marketdata.tick_consumers import TickConsumer, tick_consumer_names, tick_consumer_spec

logger = structlog.get_logger(__name__)


class Command(BaseCommand):
    help = "Run one tick consumer: react to the prices the market feed publishes, in this process."

    def add_arguments(self, parser):
        parser.add_argument("name", help=f"The consumer to run: {', '.join(tick_consumer_names())}.")
        parser.add_argument(
            "--consumer",
            default=None,
            help="This process's name in the consumer group (default: <host>-<pid>, one per process).",
        )

    def handle(self, *args, **opts):
        try:
            spec = tick_consumer_spec(opts["name"])
        except LookupError as error:
            raise CommandError(str(error)) from error
        # One batch after another in one thread, like a Celery worker: keep the database connections
        # (WORKER_DB_CONN_MAX_AGE); the consumer drops broken or old ones around each batch.
        keep_worker_connections()
        consumer = TickConsumer(spec, consumer=opts["consumer"])
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: consumer.stop())
        logger.info("tick_consumer.running", group=consumer.group, consumer=consumer.consumer)
        handled = consumer.run()
        logger.info("tick_consumer.stopped", group=consumer.group, consumer=consumer.consumer, entries=handled)
