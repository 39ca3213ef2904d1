"""What the model is sent of a conversation: a summary of older turns, then the recent turns verbatim.

Every message stays stored (the member sees the whole conversation); only the model's view is shortened.
The last RECENT_MESSAGES messages go verbatim. When more than RECENT_MESSAGES + FOLD_BATCH messages sit
after the summarised point, the oldest of them are folded into `Conversation.summary`.

The summary is extractive, not generated: one line per folded exchange, "Asked: <the question>" and
"Answered: <the first sentence of the answer>", each cut to a length, and the summary keeps its newest
SUMMARY_MAX_CHARS characters. It needs no model call (so it works offline and costs no tokens) and it
invents nothing. Numbers in the summary are not tool results of a later turn: grounding still requires a
later answer to look a figure up again before stating it.
"""

from __future__ import annotations

import re
from typing import Any

from bot.models import Conversation, Message, MessageStatus, Role

RECENT_MESSAGES = 6
FOLD_BATCH = 4
SUMMARY_MAX_CHARS = 1500
QUESTION_CHARS = 160
ANSWER_CHARS = 200

# Messages the model sees again: questions and real answers (not upgrade notices or errors).
_CONTEXT_STATUSES = {
    MessageStatus.ASKED,
    MessageStatus.ANSWERED,
    MessageStatus.REFUSED,
    MessageStatus.CONFIRMED,
    MessageStatus.CANCELLED,
}


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _first_sentence(text: str) -> str:
    text = " ".join(text.split())
    match = re.search(r"(?<=[.!?])\s", text)
    return text[: match.start()] if match else text


def summary_line(message: Message) -> str:
    if message.role == Role.USER:
        return "Asked: " + _cut(message.content, QUESTION_CHARS)
    return "Answered: " + _cut(_first_sentence(message.content), ANSWER_CHARS)


def fold(*, conversation: Conversation) -> bool:
    """Fold the oldest unsummarised messages into the summary when too many have piled up.

    Call inside the conversation's tenant. Returns whether anything was folded."""
    pending = list(
        Message.objects.filter(conversation=conversation, id__gt=conversation.summarised_through)
        .order_by("id")
        .only("id", "role", "content", "status")
    )
    if len(pending) <= RECENT_MESSAGES + FOLD_BATCH:
        return False
    folded = pending[: len(pending) - RECENT_MESSAGES]
    lines = [summary_line(m) for m in folded if m.status in _CONTEXT_STATUSES]
    summary = "\n".join(filter(None, [conversation.summary, *lines]))
    if len(summary) > SUMMARY_MAX_CHARS:
        summary = summary[-SUMMARY_MAX_CHARS:]
        summary = summary[summary.find("\n") + 1 :] if "\n" in summary else summary
    conversation.summary = summary
    conversation.summarised_through = folded[-1].id
    conversation.save(update_fields=["summary", "summarised_through", "updated_at"])
    return True


def recent_messages(*, conversation: Conversation, before_id: int | None = None) -> list[dict[str, Any]]:
    """The recent turns after the summarised point, in Chat Completions form (text only)."""
    messages = Message.objects.filter(
        conversation=conversation, id__gt=conversation.summarised_through, status__in=_CONTEXT_STATUSES
    )
    if before_id is not None:
        messages = messages.filter(id__lt=before_id)
    rows = list(messages.order_by("-id").only("id", "role", "content")[:RECENT_MESSAGES])
    return [{"role": m.role, "content": m.content} for m in reversed(rows)]
