"""The companion's one entry point for every surface (the Discord bot's /ask and DMs, the /assistant page).

    reply = companion_ask(user=user, text="how is my BTC position?", surface="web",
                          surface_key="web:default", idempotency_key=f"web:{uuid}", on_event=callback)
    reply = companion_confirm(user=user, conversation_id=reply.conversation_id,
                              token=reply.confirmation.token, accept=True)

The functions are synchronous and callable from any thread: each opens its own `tenant(user.pk)` blocks
(short ones: no transaction stays open while the model thinks). A question is answered by a loop of
provider turns (at most MAX_PROVIDER_TURNS) whose tool calls run through the registry (tools.py) as the
asking user; the final text is checked by grounding.py, regenerated once if it states a number no tool
returned, then refused. Writes (create or pause an alert, pause or resume a bot) are only proposed: the
reply carries a Confirmation and nothing changes until `companion_confirm(accept=True)`.

Metering: an answered question consumes one AI query through billing's `entitlement_consume` with the
caller's idempotency key, in the transaction that stores the answer. A retry with the same key returns
the stored answer and consumes nothing more. Over the plan's limit the reply is the plan's upgrade
message and the provider is not called. Errors (the model unreachable) and grounding refusals consume
nothing; their tokens are still stored on the message.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import structlog
from django.db import IntegrityError, connection
from django.db.models import QuerySet
from django.utils import timezone

from billing.choices import Feature
from billing.selectors import entitlement_remaining
from billing.services import PlanLimitExceeded, entitlement_check, entitlement_consume
from bot import selectors
from bot.companion import grounding, history
from bot.companion.providers import ProviderError, provider_get
from bot.companion.providers.base import Provider
from bot.companion.tools import TOOLS, tool_execute, tool_label, tool_preview, tool_run, tool_specs
from bot.models import ActionState, Conversation, Message, MessageStatus, PendingAction, Role, Surface
from core.errors import DomainError
from core.rls import tenant

logger = structlog.get_logger(__name__)

MAX_PROVIDER_TURNS = 5
QUESTION_MAX_CHARS = 2000
SURFACE_KEY_MAX_CHARS = 120
IDEMPOTENCY_KEY_MAX_CHARS = 200
CONFIRMATION_TTL = timedelta(minutes=15)
DELTA_CHARS = 48

SYSTEM_PROMPT = (
    "You are Nexus's companion for crypto traders. Answer questions about the member's own portfolio, "
    "positions, alerts, bots and orders, and about market data Nexus stores (prices, candles, regime). "
    "Use the tools for every figure: state numbers exactly as the tools return them and never compute, "
    "round or estimate new ones. If the tools cannot answer, say so plainly. To create or pause an alert "
    "or to pause or resume a bot, call the tool: it only proposes the change, and the member confirms it "
    "with a button, so say what will happen once confirmed. Do not give investment advice; label any "
    "market commentary 'Not investment advice.' Be brief."
)

EventCallback = Callable[[str, str], None]


@dataclass(frozen=True)
class Confirmation:
    token: str
    summary: str


@dataclass(frozen=True)
class CompanionReply:
    text: str
    conversation_id: int
    message_id: int | None
    status: str  # "answered" | "refused" | "over_limit" | "error" | "confirmed" | "cancelled"
    tools_called: list[str]
    confirmation: Confirmation | None
    remaining: int | None
    prompt_tokens: int
    completion_tokens: int


@dataclass
class _Outcome:
    status: str
    text: str
    provider: str = ""
    tools_called: list[str] = field(default_factory=list)
    tool_results: list[dict[str, Any]] = field(default_factory=list)
    proposal: dict[str, Any] | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


# --- reading conversations (re-exported for the surfaces) ----------------------------------------------


def conversation_list(*, user) -> QuerySet[Conversation]:
    """The user's conversations, most recent first. Evaluate inside the user's tenant."""
    return selectors.conversation_list(user=user)


def conversation_get(*, user, pk) -> Conversation:
    return selectors.conversation_get(user=user, pk=pk)


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    return selectors.conversation_messages(conversation=conversation)


def conversation_delete(*, user, conversation_id: int) -> None:
    """Delete the user's conversation with its messages and pending confirmations."""
    with tenant(user.pk):
        selectors.conversation_get(user=user, pk=conversation_id).delete()


# --- asking -------------------------------------------------------------------------------------------


def _clean_request(*, text: str, surface: str, surface_key: str, idempotency_key: str) -> str:
    text = (text or "").strip()
    if not text:
        raise DomainError("Ask a question.", field="text")
    if len(text) > QUESTION_MAX_CHARS:
        raise DomainError(f"Questions are at most {QUESTION_MAX_CHARS:,} characters.", field="text")
    if surface not in Surface.values:
        raise DomainError(f"Surface must be one of {', '.join(Surface.values)}.", field="surface")
    if (
        not surface_key
        or len(surface_key) > SURFACE_KEY_MAX_CHARS
        or not surface_key.startswith(f"{surface}:")
    ):
        raise DomainError(f"The conversation key must start with {surface}:.", field="surface_key")
    if not idempotency_key or len(idempotency_key) > IDEMPOTENCY_KEY_MAX_CHARS:
        raise DomainError("A request id (idempotency key) is required.", field="idempotency_key")
    return text


def _emit(on_event: EventCallback | None, kind: str, data: str) -> None:
    if on_event is None:
        return
    try:
        on_event(kind, data)
    except Exception:  # a surface's callback (a closed socket) must not lose the answer
        logger.warning("companion.event_callback_failed", kind=kind, exc_info=True)


def _emit_text(on_event: EventCallback | None, text: str) -> None:
    """The verified text in chunks (at word boundaries) that concatenate to it exactly."""
    if on_event is None:
        return
    start = 0
    while start < len(text):
        end = min(len(text), start + DELTA_CHARS)
        if end < len(text):
            space = text.rfind(" ", start + 1, end)
            end = space + 1 if space > start else end
        _emit(on_event, "delta", text[start:end])
        start = end


def _reply_from(message: Message, *, action: PendingAction | None = None) -> CompanionReply:
    confirmation = None
    if action is not None and action.state == ActionState.PENDING:
        confirmation = Confirmation(token=action.token, summary=action.summary)
    return CompanionReply(
        text=message.content,
        conversation_id=message.conversation_id,
        message_id=message.pk,
        status=message.status,
        tools_called=list(message.tools_called or []),
        confirmation=confirmation,
        remaining=message.remaining,
        prompt_tokens=message.prompt_tokens,
        completion_tokens=message.completion_tokens,
    )


def _conversation_for(*, user, surface: str, surface_key: str, title: str) -> Conversation:
    conversation, _ = Conversation.objects.get_or_create(
        user=user,
        surface_key=surface_key,
        defaults={"surface": surface, "title": history._cut(title, 80)},
    )
    return conversation


def _prompt(*, conversation: Conversation, question: Message) -> list[dict[str, Any]]:
    system = SYSTEM_PROMPT
    if conversation.summary:
        system += "\n\nEarlier in this conversation (summary):\n" + conversation.summary
    return [
        {"role": "system", "content": system},
        *history.recent_messages(conversation=conversation, before_id=question.pk),
        {"role": "user", "content": question.content},
    ]


def _call_message(turn_text: str | None, calls) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": turn_text or None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in calls
        ],
    }


def _answer(
    *, user, provider: Provider, messages: list[dict[str, Any]], question: str, on_event: EventCallback | None
) -> _Outcome:
    """The tool loop and grounding. Raises ProviderError when the model cannot be reached."""
    outcome = _Outcome(status=MessageStatus.ANSWERED, text="", provider=getattr(provider, "name", ""))
    specs = tool_specs()
    regenerated = False
    for _ in range(MAX_PROVIDER_TURNS):
        _release_connection(provider)
        turn = provider.complete(messages=messages, tools=specs)
        outcome.prompt_tokens += turn.prompt_tokens
        outcome.completion_tokens += turn.completion_tokens
        if turn.tool_calls:
            messages.append(_call_message(turn.text, turn.tool_calls))
            for call in turn.tool_calls:
                result = _run_call(
                    user=user, name=call.name, arguments=call.arguments, outcome=outcome, on_event=on_event
                )
                messages.append(
                    {"role": "tool", "tool_call_id": call.id, "content": json.dumps(result, default=str)}
                )
            continue
        text = (turn.text or "").strip()
        allowed = grounding.grounded_numbers(
            tool_outputs=[r["result"] for r in outcome.tool_results], question=question
        )
        missing = grounding.ungrounded(text, allowed=allowed)
        if text and not missing:
            outcome.text = text
            return outcome
        logger.info("companion.ungrounded", numbers=missing, regenerated=regenerated, empty=not text)
        if regenerated:
            break
        regenerated = True
        messages.append({"role": "assistant", "content": text})
        messages.append(
            {
                "role": "system",
                "content": grounding.regenerate_note(missing)
                if missing
                else "Your answer was empty. Answer the member's question from the tool results.",
            }
        )
    outcome.status = MessageStatus.REFUSED
    outcome.text = grounding.REFUSAL
    outcome.proposal = None
    return outcome


def _release_connection(provider: Provider) -> None:
    """Close this thread's database connection while a remote model thinks (seconds), so that waiting
    questions hold no connection; the next tool call opens one again. Not inside a caller's transaction,
    and not for a provider that answers in-process (`local = True`: the offline planner)."""
    if not getattr(provider, "local", False) and not connection.in_atomic_block:
        connection.close()


def _run_call(
    *, user, name: str, arguments: dict[str, Any], outcome: _Outcome, on_event: EventCallback | None
) -> dict[str, Any]:
    _emit(on_event, "tool", tool_label(name, arguments))
    tool = TOOLS.get(name)
    if tool is not None and tool.confirm:
        if outcome.proposal is not None:
            result = {"error": "Only one change can wait for confirmation at a time; ask again afterwards."}
        else:
            result = tool_preview(user=user, name=name, arguments=arguments)
            if "error" not in result:
                outcome.proposal = {
                    "tool": name,
                    "arguments": result.pop("arguments"),
                    "summary": result["summary"],
                }
    else:
        result = tool_run(user=user, name=name, arguments=arguments)
    outcome.tools_called.append(name)
    outcome.tool_results.append({"tool": name, "arguments": arguments, "result": result})
    return result


def companion_ask(
    *,
    user,
    text: str,
    surface: str,
    surface_key: str,
    idempotency_key: str,
    on_event: EventCallback | None = None,
) -> CompanionReply:
    """Answer one question in the conversation `surface_key`.

    on_event(kind, data): "tool" while a tool runs (data: a label such as "Looking up your BTC/USDT
    position"), then "delta" chunks of the verified answer, which concatenate to `reply.text`. Bad input
    raises DomainError (the message says what was wrong).
    """
    text = _clean_request(
        text=text, surface=surface, surface_key=surface_key, idempotency_key=idempotency_key
    )
    with tenant(user.pk):
        stored = selectors.message_for_key(user=user, idempotency_key=idempotency_key)
        if stored is not None:
            reply = _reply_from(stored, action=selectors.pending_action_for(message=stored))
        else:
            conversation = _conversation_for(user=user, surface=surface, surface_key=surface_key, title=text)
            question = Message.objects.create(
                user=user, conversation=conversation, role=Role.USER, content=text, status=MessageStatus.ASKED
            )
            messages = _prompt(conversation=conversation, question=question)
            over_limit = _over_limit(user=user)
    if stored is not None:
        _emit_text(on_event, reply.text)
        return reply

    if over_limit is not None:
        outcome = _Outcome(status=MessageStatus.OVER_LIMIT, text=over_limit)
    else:
        provider = provider_get()
        try:
            outcome = _answer(
                user=user, provider=provider, messages=messages, question=text, on_event=on_event
            )
        except ProviderError as exc:
            logger.warning("companion.provider_error", provider=getattr(provider, "name", ""), error=str(exc))
            outcome = _Outcome(
                status=MessageStatus.ERROR,
                provider=getattr(provider, "name", ""),
                text="The companion's language model could not answer just now, so nothing was counted "
                "against your plan. Please try again in a moment.",
            )
        except Exception:  # a bug must not leave the member without a reply; it is logged with its trace
            logger.exception("companion.failed", provider=getattr(provider, "name", ""))
            outcome = _Outcome(
                status=MessageStatus.ERROR,
                provider=getattr(provider, "name", ""),
                text="Something went wrong while answering, so nothing was counted against your plan. "
                "Please try again.",
            )
    try:
        reply = _store(user=user, conversation=conversation, outcome=outcome, idempotency_key=idempotency_key)
    except IntegrityError:
        # The same request, answered concurrently by another worker: its answer is the one.
        with tenant(user.pk):
            Message.objects.filter(pk=question.pk).delete()
            stored = selectors.message_for_key(user=user, idempotency_key=idempotency_key)
            if stored is None:
                raise
            reply = _reply_from(stored, action=selectors.pending_action_for(message=stored))
    _emit_text(on_event, reply.text)
    return reply


def _over_limit(*, user) -> str | None:
    """The plan's upgrade message when no AI query is left this month, else None (nothing recorded yet:
    the query is consumed when the answer is stored)."""
    try:
        entitlement_check(user=user, feature=Feature.AI_QUERIES)
    except PlanLimitExceeded as exc:
        return str(exc)
    return None


def _store(*, user, conversation: Conversation, outcome: _Outcome, idempotency_key: str) -> CompanionReply:
    """Consume the query (answers only) and store the answer, in one transaction."""
    with tenant(user.pk):
        remaining: int | None
        if outcome.status == MessageStatus.ANSWERED:
            try:
                remaining = entitlement_consume(
                    user=user, feature=Feature.AI_QUERIES, idempotency_key=idempotency_key
                )
            except PlanLimitExceeded as exc:  # the last query went to a concurrent question meanwhile
                outcome = _Outcome(
                    status=MessageStatus.OVER_LIMIT,
                    text=str(exc),
                    provider=outcome.provider,
                    prompt_tokens=outcome.prompt_tokens,
                    completion_tokens=outcome.completion_tokens,
                )
                remaining = 0
        elif outcome.status == MessageStatus.OVER_LIMIT:
            remaining = 0
        else:
            remaining = entitlement_remaining(user=user, feature=Feature.AI_QUERIES)
        message = Message.objects.create(
            user=user,
            conversation=conversation,
            role=Role.ASSISTANT,
            content=outcome.text,
            tools_called=outcome.tools_called,
            tool_results=outcome.tool_results,
            status=outcome.status,
            prompt_tokens=outcome.prompt_tokens,
            completion_tokens=outcome.completion_tokens,
            provider=outcome.provider,
            # Only an answer is the stored reply to a retry; an error or a limit notice may be asked again.
            idempotency_key=idempotency_key if outcome.status == MessageStatus.ANSWERED else "",
            remaining=remaining,
        )
        action = None
        if outcome.proposal is not None and outcome.status == MessageStatus.ANSWERED:
            action = PendingAction.objects.create(
                user=user,
                conversation=conversation,
                message=message,
                token=secrets.token_urlsafe(18),
                tool=outcome.proposal["tool"],
                arguments=outcome.proposal["arguments"],
                summary=outcome.proposal["summary"][:300],
                expires_at=timezone.now() + CONFIRMATION_TTL,
            )
        conversation.save(update_fields=["updated_at"])
        history.fold(conversation=conversation)
        return _reply_from(message, action=action)


# --- confirming a proposed write ----------------------------------------------------------------------


def companion_confirm(*, user, conversation_id: int, token: str, accept: bool) -> CompanionReply:
    """Do (accept=True) or drop the change the companion proposed with `token`. Confirming twice
    returns the first outcome. Consumes no AI query."""
    with tenant(user.pk):
        conversation = selectors.conversation_get(user=user, pk=conversation_id)
        action = (
            PendingAction.objects.select_for_update()
            .filter(user_id=user.pk, conversation=conversation, token=str(token or "")[:64])
            .first()
        )
        if action is None:
            raise DomainError("That confirmation does not exist (or belongs to another conversation).")
        if action.state != ActionState.PENDING:
            done = Message.objects.filter(pk=action.result.get("message_id")).first()
            if done is not None:
                return _reply_from(done)
            raise DomainError("That change was already handled.")
        now = timezone.now()
        result: dict[str, Any]
        if not accept:
            state, status = ActionState.CANCELLED, MessageStatus.CANCELLED
            text, result = f"Cancelled; nothing was changed ({action.summary}).", {}
        elif action.expires_at <= now:
            state, status = ActionState.EXPIRED, MessageStatus.CANCELLED
            text, result = (
                f"That confirmation expired, so nothing was changed ({action.summary}). Ask again.",
                {},
            )
        else:
            result = tool_execute(user=user, name=action.tool, arguments=action.arguments)
            if "error" in result:
                state, status = ActionState.FAILED, MessageStatus.ERROR
                text = f"I could not do that: {result['error']}"
            else:
                state, status = ActionState.CONFIRMED, MessageStatus.CONFIRMED
                text = f"Done: {result['done']}."
        message = Message.objects.create(
            user=user,
            conversation=conversation,
            role=Role.ASSISTANT,
            content=text,
            tools_called=[action.tool] if accept and state != ActionState.EXPIRED else [],
            tool_results=[{"tool": action.tool, "arguments": action.arguments, "result": result}]
            if result
            else [],
            status=status,
        )
        action.state, action.resolved_at = state, now
        action.result = {**result, "message_id": message.pk}
        action.save(update_fields=["state", "resolved_at", "result"])
        conversation.save(update_fields=["updated_at"])
        return _reply_from(message)
