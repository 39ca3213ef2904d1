"""The bot process (`manage.py runbot`): connect, answer, beat, reconnect, stop cleanly.

- nextcord reconnects a dropped gateway session by itself (`connect(reconnect=True)`); when logging in or
  connecting fails outright (Discord unreachable, a 5xx), this loop starts a fresh client after an
  exponential backoff (1 s doubling to 5 minutes, reset once connected). A rejected token stops the process:
  retrying cannot fix it.
- SIGTERM / SIGINT: stop taking commands (new ones are told the bot is restarting), let those in flight
  finish (up to `grace` seconds), close the gateway connection, then the worker pool.
- Every 15 s while connected, a heartbeat in Redis (core.heartbeats) that /readyz reports.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import aiohttp
import nextcord
import structlog

from bot.discord.client import NexusBot
from bot.discord.metrics import CONNECTED, ERRORS, RECONNECTS
from core.heartbeats import DISCORD_BOT, heartbeat_beat

logger = structlog.get_logger(__name__)

HEARTBEAT_SECONDS = 15.0
BACKOFF_START = 1.0
BACKOFF_MAX = 300.0
GRACE_SECONDS = 25.0
# Failures worth another try after a wait; anything else is a bug and ends the process (the supervisor restarts).
RETRYABLE = (
    OSError,
    asyncio.TimeoutError,
    aiohttp.ClientError,
    nextcord.GatewayNotFound,
    nextcord.ConnectionClosed,
    nextcord.DiscordServerError,
)


class BotRunner:
    def __init__(
        self,
        *,
        token: str,
        workers: int = 8,
        client_factory: Callable[..., NexusBot] = NexusBot,
        grace: float = GRACE_SECONDS,
        heartbeat_every: float = HEARTBEAT_SECONDS,
        backoff_start: float = BACKOFF_START,
        backoff_max: float = BACKOFF_MAX,
        beat: Callable[[], None] | None = None,
    ) -> None:
        self.token = token
        self.executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="discord-orm")
        self.client_factory = client_factory
        self.grace = grace
        self.heartbeat_every = heartbeat_every
        self.backoff_start = backoff_start
        self.backoff_max = backoff_max
        self.beat = beat or (lambda: heartbeat_beat(DISCORD_BOT))
        self.stop_event = asyncio.Event()
        self.client: NexusBot | None = None
        self.attempts = 0

    def request_stop(self, signame: str = "") -> None:
        if not self.stop_event.is_set():
            logger.info("discord.stopping", signal=signame)
            self.stop_event.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop, sig.name)

    async def _sleep_unless_stopped(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):  # not wait_for: on 3.11 it can lose a cancellation
                await self.stop_event.wait()

    async def heartbeat_loop(self) -> None:
        loop = asyncio.get_running_loop()
        while not self.stop_event.is_set():
            client = self.client
            connected = client is not None and client.is_ready() and not client.is_closed()
            CONNECTED.set(1 if connected else 0)
            if connected:
                try:
                    await loop.run_in_executor(None, self.beat)
                except Exception:
                    ERRORS.labels(where="heartbeat").inc()
                    logger.exception("discord.heartbeat_failed")
            await self._sleep_unless_stopped(self.heartbeat_every)

    async def shutdown(self, client: NexusBot) -> None:
        """Finish in-flight commands (within the grace period), then close the client."""
        left = await client.drain(timeout=self.grace)
        if left:
            logger.warning("discord.shutdown_abandoned", commands=left)
        if not client.is_closed():
            await client.close()
        CONNECTED.set(0)

    async def run(self) -> int:
        """Run until stopped; returns the process's exit code."""
        heartbeat = asyncio.create_task(self.heartbeat_loop(), name="discord-heartbeat")
        backoff = self.backoff_start
        code = 0
        try:
            while not self.stop_event.is_set():
                client = self.client_factory(executor=self.executor)
                self.client = client
                self.attempts += 1
                RECONNECTS.inc()
                stop = asyncio.create_task(self.stop_event.wait())
                session = asyncio.create_task(self._session(client))
                done, _ = await asyncio.wait({stop, session}, return_when=asyncio.FIRST_COMPLETED)
                if stop in done:
                    await self.shutdown(client)
                    session.cancel()
                    await asyncio.gather(session, return_exceptions=True)
                    break
                stop.cancel()
                try:
                    session.result()
                    logger.info("discord.session_ended")
                except nextcord.LoginFailure:
                    logger.error("discord.login_refused", hint="DISCORD_BOT_TOKEN is wrong or was reset")
                    code = 1
                    break
                except RETRYABLE as exc:
                    ERRORS.labels(where="connect").inc()
                    logger.warning("discord.connect_failed", error=repr(exc), retry_in=backoff)
                finally:
                    if not client.is_closed():
                        await client.close()
                if client.ready_once.is_set():
                    backoff = self.backoff_start
                await self._sleep_unless_stopped(backoff)
                backoff = min(backoff * 2, self.backoff_max)
        finally:
            self.stop_event.set()
            await asyncio.gather(heartbeat, return_exceptions=True)
            self.executor.shutdown(wait=True)
            logger.info("discord.stopped", code=code)
        return code

    async def _session(self, client: NexusBot) -> None:
        await client.login(self.token)
        await client.connect(reconnect=True)
