from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from bot.models import ActionState, Conversation, Message, MessageStatus, PendingAction, Role, Surface
from tests.factories.base import TenantFactory, owner


class ConversationFactory(TenantFactory):
    """A web chat conversation."""

    class Meta:
        model = Conversation

    surface = Surface.WEB
    surface_key = factory.Sequence(lambda n: f"web:conversation-{n}")
    title = "How is my BTC position?"


class MessageFactory(TenantFactory):
    """A member's question in a conversation."""

    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory, user=owner())
    role = Role.USER
    content = "How is my BTC position?"
    status = MessageStatus.ASKED


class PendingActionFactory(TenantFactory):
    """A proposed price alert waiting for the member's confirmation."""

    class Meta:
        model = PendingAction

    conversation = factory.SubFactory(ConversationFactory, user=owner())
    message = factory.SubFactory(
        MessageFactory,
        user=owner(),
        conversation=factory.SelfAttribute("..conversation"),
        role=Role.ASSISTANT,
        content="Create a price alert: BTC/USDT rises above 90,000.00. Confirm to go ahead or cancel.",
        status=MessageStatus.ANSWERED,
    )
    token = factory.Sequence(lambda n: f"confirm-token-{n}")
    tool = "alert_create"
    arguments = factory.LazyFunction(lambda: {"pair": "BTC/USDT", "direction": "above", "level": "90000"})
    summary = "Create a price alert: BTC/USDT rises above 90,000.00"
    state = ActionState.PENDING
    expires_at = factory.LazyFunction(lambda: timezone.now() + timedelta(minutes=15))
