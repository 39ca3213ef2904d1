"""`/ask`, DMs to the bot and the Confirm / Cancel buttons: the companion (bot/companion/service.py) asked as
the linked member, its answer turned into a render-ready Reply. Runs on the bot's worker pool."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from accounts.selectors import discord_user_resolve
from bot.companion.service import companion_ask, companion_confirm
from bot.discord.commands import Member, not_linked_reply
from bot.discord.render import COLOR_ERROR, COLOR_INFO, COLOR_OK, Reply, error_reply
from core.errors import DomainError

TITLES = {
    "answered": "Nexus companion",
    "refused": "Nexus companion",
    "over_limit": "AI query limit reached",
    "error": "The companion could not answer",
    "confirmed": "Done",
    "cancelled": "Cancelled",
}


@dataclass(frozen=True)
class AskAnswer:
    reply: Reply
    outcome: str
    conversation_id: int | None = None
    confirmation: Any = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


def _answer(result) -> AskAnswer:
    status = getattr(result, "status", "answered")
    colour = (
        COLOR_ERROR
        if status in ("error", "over_limit")
        else COLOR_OK
        if status == "confirmed"
        else COLOR_INFO
    )
    footer = "Answers come from your Nexus data. Not investment advice."
    remaining = getattr(result, "remaining", None)
    if remaining is not None:
        footer += f" AI queries left this month: {remaining}."
    description = result.text
    confirmation = getattr(result, "confirmation", None)
    if confirmation is not None:
        description += f"\n\n**Confirm:** {confirmation.summary}"
    return AskAnswer(
        reply=Reply(
            title=TITLES.get(status, "Nexus companion"), description=description, footer=footer, color=colour
        ),
        outcome=status,
        conversation_id=getattr(result, "conversation_id", None),
        confirmation=confirmation,
        prompt_tokens=getattr(result, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(result, "completion_tokens", 0) or 0,
    )


def ask_run(member: Member, *, question: str, surface_key: str, idempotency_key: str) -> AskAnswer:
    """The companion's answer to `question` from the member (one AI query, counted once per key)."""
    question = (question or "").strip()
    if not question:
        return AskAnswer(
            reply=error_reply("Ask a question, e.g. “how is my BTC position?”."), outcome="bad_input"
        )
    user = discord_user_resolve(discord_user_id=member.discord_user_id)
    if user is None:
        return AskAnswer(reply=not_linked_reply(), outcome="not_linked")
    # The companion opens its own short tenant blocks: no transaction stays open while the model thinks.
    try:
        result = companion_ask(
            user=user,
            text=question,
            surface="discord",
            surface_key=surface_key,
            idempotency_key=idempotency_key,
        )
    except DomainError as exc:
        return AskAnswer(reply=error_reply(str(exc)), outcome="bad_input")
    return _answer(result)


def confirm_run(member: Member, *, conversation_id: int, token: str, accept: bool) -> AskAnswer:
    """The member pressed Confirm or Cancel under an answer that proposed an action."""
    user = discord_user_resolve(discord_user_id=member.discord_user_id)
    if user is None:
        return AskAnswer(reply=not_linked_reply(), outcome="not_linked")
    try:
        result = companion_confirm(user=user, conversation_id=conversation_id, token=token, accept=accept)
    except DomainError as exc:
        return AskAnswer(reply=error_reply(str(exc)), outcome="bad_input")
    return _answer(result)
