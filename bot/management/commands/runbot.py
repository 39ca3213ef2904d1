"""`manage.py runbot`: the Discord bot (docs/companion.md). Needs DISCORD_BOT_TOKEN."""

from __future__ import annotations

import asyncio
import sys

import structlog
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

logger = structlog.get_logger(__name__)

OFF_MESSAGE = (
    "The Discord bot is off: set DISCORD_BOT_TOKEN to turn it on "
    "(docs/companion.md explains how to create the Discord application)."
)


class Command(BaseCommand):
    help = "Run the Discord bot: slash commands, DMs to the companion, heartbeat and metrics."

    def add_arguments(self, parser):
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=settings.DISCORD_BOT_METRICS_PORT,
            help="Serve Prometheus metrics on this port; 0 turns it off.",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=settings.DISCORD_BOT_WORKERS,
            help="Threads for database work (each holds its own connections).",
        )

    def handle(self, *args, **opts):
        if not settings.DISCORD_BOT_TOKEN:
            self.stdout.write(OFF_MESSAGE)
            sys.exit(0)
        if opts["workers"] < 1:
            raise CommandError("--workers must be at least 1")
        if opts["metrics_port"]:
            from prometheus_client import start_http_server

            start_http_server(opts["metrics_port"])
            logger.info("discord.metrics_serving", port=opts["metrics_port"])
        from nextcord.http import Route

        from bot.discord.runner import BotRunner

        # The REST base nextcord (and its interaction webhooks) use; the same setting as the notification sender.
        Route.BASE = settings.DISCORD_API_BASE.rstrip("/")

        async def main() -> int:
            runner = BotRunner(token=settings.DISCORD_BOT_TOKEN, workers=opts["workers"])
            runner.install_signal_handlers()
            return await runner.run()

        code = asyncio.run(main())
        if code:
            raise CommandError("the Discord bot stopped: Discord refused DISCORD_BOT_TOKEN")
