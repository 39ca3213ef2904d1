"""The nextcord client: slash commands and DMs, kept thin.

Each handler parses the options, runs the command's synchronous function (bot/discord/commands.py) on the
bot's bounded thread pool through asgiref's `sync_to_async(thread_sensitive=False)` (never on the event
loop), and sends the embeds. A command that takes longer than `defer_after` seconds is deferred first
(Discord wants an answer within 3 s). A member's own numbers go ephemeral (only they see them; in a DM
nobody else can) unless they pass `share: True`. Unexpected exceptions are logged and answered with a short
apology; nothing fails silently.

No `from __future__ import annotations` here: nextcord reads the handlers' annotations at runtime.
"""

import asyncio
import io
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import nextcord
import structlog
from asgiref.sync import sync_to_async
from django.db import close_old_connections
from nextcord import Interaction, SlashOption

from bot.discord import ask as ask_module
from bot.discord.commands import Member, command_run
from bot.discord.metrics import AI_TOKENS, COMMANDS, ERRORS, IN_FLIGHT, LATENCY
from bot.discord.render import Reply, error_reply, render

logger = structlog.get_logger(__name__)

APOLOGY = (
    "Sorry, something went wrong on our side while answering that. It has been logged; please try again."
)
RESTARTING = "Nexus is restarting its Discord bot; try again in a minute."
# Commands whose answers are market data, not the member's own: posted in the channel.
PUBLIC_COMMANDS = frozenset({"price", "chart", "regime"})
INTERVALS = ["1m", "5m", "1h", "1d"]
CONFIRM_PREFIX = "nexus:confirm:"


def _in_worker(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run `function` on a pool thread with fresh-enough database connections (a broken or expired one is
    closed first and after, as Django does around each request)."""

    def run(*args, **kwargs):
        close_old_connections()
        try:
            return function(*args, **kwargs)
        finally:
            close_old_connections()

    return run


def member_of(user) -> Member:
    return Member(
        discord_user_id=str(user.id),
        username=getattr(user, "name", "") or "",
        global_name=getattr(user, "global_name", "") or "",
    )


class NexusBot(nextcord.Client):
    def __init__(self, *, executor: ThreadPoolExecutor, defer_after: float = 2.0, **kwargs) -> None:
        intents = nextcord.Intents.none()
        intents.guilds = True
        intents.dm_messages = True
        kwargs.setdefault("intents", intents)
        super().__init__(**kwargs)
        self.executor = executor
        self.defer_after = defer_after
        self.stopping = False
        self.ready_once = asyncio.Event()
        self._in_flight: set[asyncio.Task] = set()
        register_commands(self)

    # --- plumbing ------------------------------------------------------------------------------------

    async def run_sync(self, function: Callable[..., Any], *args, **kwargs) -> Any:
        return await sync_to_async(_in_worker(function), thread_sensitive=False, executor=self.executor)(
            *args, **kwargs
        )

    def _track(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._in_flight.add(task)
            task.add_done_callback(self._in_flight.discard)

    async def drain(self, *, timeout: float) -> int:
        """Stop taking commands and wait (at most `timeout` s) for those in flight; returns how many were
        still running when the time ran out."""
        self.stopping = True
        current = asyncio.current_task()
        pending = {task for task in self._in_flight if task is not current and not task.done()}
        if not pending:
            return 0
        _, still = await asyncio.wait(pending, timeout=timeout)
        return len(still)

    async def on_ready(self) -> None:
        self.ready_once.set()
        logger.info("discord.ready", user=str(self.user), guilds=len(self.guilds))

    async def on_interaction(self, interaction: Interaction) -> None:
        data: dict[str, Any] = dict(interaction.data or {})
        custom_id = str(data.get("custom_id", ""))
        if interaction.type == nextcord.InteractionType.component and custom_id.startswith(CONFIRM_PREFIX):
            await self.handle_confirm(interaction, custom_id)
            return
        await self.process_application_commands(interaction)

    async def on_application_command_error(self, interaction: Interaction, exception: Exception) -> None:
        ERRORS.labels(where="nextcord").inc()
        logger.error("discord.command_error", error=repr(exception), exc_info=exception)
        if not interaction.response.is_done():
            await interaction.response.send_message(APOLOGY, ephemeral=True)

    # --- answering -----------------------------------------------------------------------------------

    async def send_reply(
        self, interaction: Interaction, reply: Reply, *, share: bool = False, view=None
    ) -> None:
        ephemeral = bool(reply.error or (reply.private and not share))
        messages = render(reply)
        for index, embeds in enumerate(messages):
            kwargs: dict[str, Any] = {
                "embeds": [nextcord.Embed.from_dict(embed) for embed in embeds],
                "ephemeral": ephemeral,
            }
            if index == 0 and reply.image is not None:
                kwargs["file"] = nextcord.File(io.BytesIO(reply.image.data), filename=reply.image.filename)
            if index == len(messages) - 1 and view is not None:
                kwargs["view"] = view
            if index == 0 and not interaction.response.is_done():
                await interaction.response.send_message(**kwargs)
            else:
                await interaction.followup.send(**kwargs)

    async def handle(self, interaction: Interaction, name: str, *, share: bool = False, **options) -> None:
        """Run the command `name` for the member behind `interaction` and answer it."""
        self._track()
        IN_FLIGHT.inc()
        started = time.perf_counter()
        outcome = "ok"
        log = logger.bind(
            command=name,
            interaction_id=str(interaction.id),
            discord_user_id=str(interaction.user.id if interaction.user else ""),
            guild_id=str(interaction.guild_id or ""),
        )
        try:
            if self.stopping:
                outcome = "restarting"
                await self.send_reply(interaction, error_reply(RESTARTING, title="Restarting"))
                return
            work = asyncio.ensure_future(
                self.run_sync(command_run, name, member_of(interaction.user), **options)
            )
            done, _ = await asyncio.wait({work}, timeout=self.defer_after)
            if not done:
                await interaction.response.defer(ephemeral=name not in PUBLIC_COMMANDS and not share)
            reply = await work
            outcome = "bad_input" if reply.error else "ok"
            await self.send_reply(interaction, reply, share=share)
            log.info("discord.command", outcome=outcome, ms=round((time.perf_counter() - started) * 1000, 1))
        except Exception:
            outcome = "error"
            ERRORS.labels(where="command").inc()
            log.exception("discord.command_failed")
            await self._apologise(interaction)
        finally:
            IN_FLIGHT.dec()
            COMMANDS.labels(command=name, outcome=outcome).inc()
            LATENCY.labels(command=name).observe(time.perf_counter() - started)

    async def _apologise(self, interaction: Interaction) -> None:
        try:
            await self.send_reply(interaction, error_reply(APOLOGY, title="Sorry"))
        except Exception:
            logger.exception("discord.apology_failed", interaction_id=str(interaction.id))

    # --- the companion -------------------------------------------------------------------------------

    async def handle_ask(self, interaction: Interaction, question: str, *, share: bool = False) -> None:
        self._track()
        IN_FLIGHT.inc()
        started = time.perf_counter()
        outcome = "ok"
        try:
            if self.stopping:
                outcome = "restarting"
                await self.send_reply(interaction, error_reply(RESTARTING, title="Restarting"))
                return
            await interaction.response.defer(ephemeral=not share)
            in_dm = interaction.guild_id is None
            surface_key = (
                f"discord:dm:{interaction.channel_id}" if in_dm else f"discord:{interaction.channel_id}"
            )
            answer = await self.run_sync(
                ask_module.ask_run,
                member_of(interaction.user),
                question=question,
                surface_key=surface_key,
                idempotency_key=f"discord:{interaction.id}",
            )
            outcome = answer.outcome
            self._count_tokens(answer)
            await self.send_reply(interaction, answer.reply, share=share, view=self._confirm_view(answer))
        except Exception:
            outcome = "error"
            ERRORS.labels(where="ask").inc()
            logger.exception("discord.ask_failed", interaction_id=str(interaction.id))
            await self._apologise(interaction)
        finally:
            IN_FLIGHT.dec()
            COMMANDS.labels(command="ask", outcome=outcome).inc()
            LATENCY.labels(command="ask").observe(time.perf_counter() - started)

    @staticmethod
    def _count_tokens(answer) -> None:
        if answer.prompt_tokens:
            AI_TOKENS.labels(kind="prompt").inc(answer.prompt_tokens)
        if answer.completion_tokens:
            AI_TOKENS.labels(kind="completion").inc(answer.completion_tokens)

    @staticmethod
    def _confirm_view(answer):
        if answer.confirmation is None or answer.conversation_id is None:
            return None
        view = nextcord.ui.View(timeout=None)
        base = f"{CONFIRM_PREFIX}{answer.conversation_id}:{answer.confirmation.token}"
        view.add_item(
            nextcord.ui.Button(label="Confirm", style=nextcord.ButtonStyle.success, custom_id=f"{base}:yes")
        )
        view.add_item(
            nextcord.ui.Button(label="Cancel", style=nextcord.ButtonStyle.secondary, custom_id=f"{base}:no")
        )
        return view

    async def handle_confirm(self, interaction: Interaction, custom_id: str) -> None:
        """A Confirm / Cancel button under a companion answer that proposed an action."""
        self._track()
        started = time.perf_counter()
        outcome = "ok"
        try:
            conversation, token, choice = custom_id[len(CONFIRM_PREFIX) :].rsplit(":", 2)
            # A new (ephemeral) message for the outcome, rather than an update of the answer with the buttons.
            await interaction.response.defer(ephemeral=True, with_message=True)
            answer = await self.run_sync(
                ask_module.confirm_run,
                member_of(interaction.user),
                conversation_id=int(conversation),
                token=token,
                accept=choice == "yes",
            )
            outcome = answer.outcome
            await self.send_reply(interaction, answer.reply)
        except Exception:
            outcome = "error"
            ERRORS.labels(where="confirm").inc()
            logger.exception("discord.confirm_failed", interaction_id=str(interaction.id))
            await self._apologise(interaction)
        finally:
            COMMANDS.labels(command="confirm", outcome=outcome).inc()
            LATENCY.labels(command="confirm").observe(time.perf_counter() - started)

    async def _dm_command(self, message: nextcord.Message, name: str, **options) -> None:
        self._track()
        started = time.perf_counter()
        outcome = "ok"
        try:
            reply = await self.run_sync(command_run, name, member_of(message.author), **options)
            outcome = "bad_input" if reply.error else "ok"
            for embeds in render(reply):
                await message.channel.send(embeds=[nextcord.Embed.from_dict(embed) for embed in embeds])
        except Exception:
            outcome = "error"
            ERRORS.labels(where="dm").inc()
            logger.exception("discord.dm_command_failed", message_id=str(message.id))
            await message.channel.send(APOLOGY)
        finally:
            COMMANDS.labels(command=name, outcome=outcome).inc()
            LATENCY.labels(command=name).observe(time.perf_counter() - started)

    async def on_message(self, message: nextcord.Message) -> None:
        """A direct message to the bot is a question for the companion."""
        if (
            message.guild is not None
            or message.author.bot
            or self.user is None
            or message.author.id == self.user.id
        ):
            return
        text = (message.content or "").strip()
        if not text:
            return
        if text.lower().startswith(("/link ", "link ")):
            # The code typed as a plain message rather than through the slash command.
            await self._dm_command(message, "link", code=text.split(maxsplit=1)[1])
            return
        self._track()
        started = time.perf_counter()
        outcome = "ok"
        try:
            if self.stopping:
                outcome = "restarting"
                await message.channel.send(RESTARTING)
                return
            async with message.channel.typing():
                answer = await self.run_sync(
                    ask_module.ask_run,
                    member_of(message.author),
                    question=text,
                    surface_key=f"discord:dm:{message.channel.id}",
                    idempotency_key=f"discord-msg:{message.id}",
                )
            outcome = answer.outcome
            self._count_tokens(answer)
            view = self._confirm_view(answer)
            messages = render(answer.reply)
            for index, embeds in enumerate(messages):
                kwargs: dict[str, Any] = {"embeds": [nextcord.Embed.from_dict(embed) for embed in embeds]}
                if index == len(messages) - 1 and view is not None:
                    kwargs["view"] = view
                await message.channel.send(**kwargs)
        except Exception:
            outcome = "error"
            ERRORS.labels(where="dm").inc()
            logger.exception("discord.dm_failed", message_id=str(message.id))
            try:
                await message.channel.send(APOLOGY)
            except Exception:
                logger.exception("discord.apology_failed", message_id=str(message.id))
        finally:
            COMMANDS.labels(command="dm", outcome=outcome).inc()
            LATENCY.labels(command="dm").observe(time.perf_counter() - started)


def _share_option():
    return SlashOption(
        description="Post the answer in the channel for everyone (default: only you see it)",
        required=False,
        default=False,
    )


def register_commands(bot: NexusBot) -> None:
    """The slash commands, in servers and DMs. Each parses its options and hands over to `bot.handle`."""

    @bot.slash_command(name="help", description="What the Nexus bot can do", dm_permission=True)
    async def help_command(interaction: Interaction):
        await bot.handle(interaction, "help")

    @bot.slash_command(
        name="link",
        description="Link your Nexus account with a code from Settings → Discord",
        dm_permission=True,
    )
    async def link_command(
        interaction: Interaction,
        code: str = SlashOption(description="The code shown under Settings → Discord, e.g. ABCDE-FGH23"),
    ):
        await bot.handle(interaction, "link", code=code)

    @bot.slash_command(
        name="unlink", description="Unlink your Nexus account from this Discord account", dm_permission=True
    )
    async def unlink_command(interaction: Interaction):
        await bot.handle(interaction, "unlink")

    @bot.slash_command(name="portfolio", description="Your portfolios' value and P&L", dm_permission=True)
    async def portfolio_command(interaction: Interaction, share: bool = _share_option()):
        await bot.handle(interaction, "portfolio", share=share)

    @bot.slash_command(name="position", description="One of your holdings", dm_permission=True)
    async def position_command(
        interaction: Interaction,
        symbol: str = SlashOption(description="BTC, or a pair such as BTC/USDT"),
        share: bool = _share_option(),
    ):
        await bot.handle(interaction, "position", share=share, symbol=symbol)

    @bot.slash_command(name="price", description="The latest price of a pair", dm_permission=True)
    async def price_command(interaction: Interaction, pair: str = SlashOption(description="e.g. BTC/USDT")):
        await bot.handle(interaction, "price", pair=pair)

    @bot.slash_command(name="chart", description="A candle chart of a pair", dm_permission=True)
    async def chart_command(
        interaction: Interaction,
        pair: str = SlashOption(description="e.g. BTC/USDT"),
        interval: str = SlashOption(
            description="Candle size", choices=INTERVALS, required=False, default="1h"
        ),
    ):
        await bot.handle(interaction, "chart", pair=pair, interval=interval)

    @bot.slash_command(
        name="regime", description="The regime gatekeeper's latest reading for a pair", dm_permission=True
    )
    async def regime_command(interaction: Interaction, pair: str = SlashOption(description="e.g. BTC/USDT")):
        await bot.handle(interaction, "regime", pair=pair)

    @bot.slash_command(name="alerts", description="Your alerts", dm_permission=True)
    async def alerts_command(interaction: Interaction):
        pass  # the subcommands answer

    @alerts_command.subcommand(name="list", description="List your alerts")
    async def alerts_list(interaction: Interaction, share: bool = _share_option()):
        await bot.handle(interaction, "alerts list", share=share)

    @alerts_command.subcommand(name="add", description="Add a price alert")
    async def alerts_add(
        interaction: Interaction,
        condition: str = SlashOption(
            description="When it fires", choices=["above", "below", "cross", "move"]
        ),
        pair: str = SlashOption(description="e.g. BTC/USDT"),
        level: str = SlashOption(description="The price (or, for move, the percent, e.g. -5)"),
        window: int = SlashOption(
            description="For move: minutes (5, 15, 60, 240 or 1440)", required=False, default=None
        ),
    ):
        await bot.handle(
            interaction, "alerts add", condition=condition, pair=pair, level=level, window=window
        )

    @alerts_command.subcommand(name="pause", description="Pause one of your alerts")
    async def alerts_pause(
        interaction: Interaction, alert_id: int = SlashOption(name="id", description="Alert #")
    ):
        await bot.handle(interaction, "alerts pause", alert_id=alert_id)

    @alerts_command.subcommand(name="remove", description="Delete one of your alerts")
    async def alerts_remove(
        interaction: Interaction, alert_id: int = SlashOption(name="id", description="Alert #")
    ):
        await bot.handle(interaction, "alerts remove", alert_id=alert_id)

    @bot.slash_command(name="bots", description="Your trading bots", dm_permission=True)
    async def bots_command(interaction: Interaction):
        pass  # the subcommands answer

    @bots_command.subcommand(name="list", description="List your bots")
    async def bots_list(interaction: Interaction, share: bool = _share_option()):
        await bot.handle(interaction, "bots list", share=share)

    @bots_command.subcommand(name="pause", description="Pause one of your bots")
    async def bots_pause(interaction: Interaction, bot_id: int = SlashOption(name="id", description="Bot #")):
        await bot.handle(interaction, "bots pause", bot_id=bot_id)

    @bots_command.subcommand(name="resume", description="Resume one of your bots")
    async def bots_resume(
        interaction: Interaction, bot_id: int = SlashOption(name="id", description="Bot #")
    ):
        await bot.handle(interaction, "bots resume", bot_id=bot_id)

    @bot.slash_command(name="orders", description="Your open or recent orders", dm_permission=True)
    async def orders_command(
        interaction: Interaction,
        which: str = SlashOption(
            description="open (default) or recent", choices=["open", "recent"], required=False, default="open"
        ),
        share: bool = _share_option(),
    ):
        await bot.handle(interaction, "orders", share=share, which=which)

    @bot.slash_command(
        name="ask", description="Ask the Nexus companion about your trading", dm_permission=True
    )
    async def ask_command(
        interaction: Interaction,
        question: str = SlashOption(description="e.g. how is my BTC position?", max_length=1000),
        share: bool = _share_option(),
    ):
        await bot.handle_ask(interaction, question, share=share)

    @bot.slash_command(
        name="usage", description="AI queries left on your plan this month", dm_permission=True
    )
    async def usage_command(interaction: Interaction):
        await bot.handle(interaction, "usage")
