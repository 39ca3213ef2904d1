"""Reads of the companion's conversations. Each filters by user (row-level security is the backstop)."""

from __future__ import annotations

from django.db.models import QuerySet

from bot.models import Conversation, Message, PendingAction
from core.errors import DomainError


def conversation_list(*, user) -> QuerySet[Conversation]:
    return Conversation.objects.filter(user_id=user.pk).order_by("-updated_at", "-id")


def conversation_get(*, user, pk) -> Conversation:
    """The user's conversation `pk`; DomainError when there is none (or it is someone else's)."""
    try:
        return Conversation.objects.get(user_id=user.pk, pk=int(pk))
    except (Conversation.DoesNotExist, TypeError, ValueError):
        raise DomainError("No such conversation.") from None


def conversation_for_surface(*, user, surface_key: str) -> Conversation | None:
    return Conversation.objects.filter(user_id=user.pk, surface_key=surface_key).first()


def conversation_messages(*, conversation: Conversation) -> QuerySet[Message]:
    """Every stored message of the conversation, oldest first (the summary covers nothing here: the
    verbatim rows are kept; only what the model is sent is shortened)."""
    return Message.objects.filter(conversation=conversation, user_id=conversation.user_id).order_by("id")


def message_for_key(*, user, idempotency_key: str) -> Message | None:
    if not idempotency_key:
        return None
    return Message.objects.filter(user_id=user.pk, idempotency_key=idempotency_key).first()


def pending_action_for(*, message: Message) -> PendingAction | None:
    return PendingAction.objects.filter(message=message, user_id=message.user_id).order_by("id").first()
