"""The companion's conversations, their messages and the writes waiting for a member's confirmation.

All three are tenant data (user_id, row-level security). A conversation is one per place a member talks
to the companion: a web chat (`web:default`, `web:<uuid>`), a Discord DM (`discord:dm:<channel_id>`) or
a Discord channel (`discord:<channel_id>`). Recent turns are kept verbatim; older turns are folded into
`Conversation.summary` (bot/companion/history.py).
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from core.models import TenantModel


class Surface(models.TextChoices):
    WEB = "web", "Web"
    DISCORD = "discord", "Discord"
    API = "api", "API"


class Role(models.TextChoices):
    USER = "user", "Member"
    ASSISTANT = "assistant", "Companion"


class MessageStatus(models.TextChoices):
    # A member's question, stored before the answer is worked out.
    ASKED = "asked", "Asked"
    ANSWERED = "answered", "Answered"
    REFUSED = "refused", "Refused"
    OVER_LIMIT = "over_limit", "Over the plan's limit"
    ERROR = "error", "Error"
    CONFIRMED = "confirmed", "Confirmed"
    CANCELLED = "cancelled", "Cancelled"


class ActionState(models.TextChoices):
    PENDING = "pending", "Waiting for the member"
    CONFIRMED = "confirmed", "Confirmed and done"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Confirmed but refused"
    EXPIRED = "expired", "Expired"


class Conversation(TenantModel):
    surface = models.CharField(max_length=16, choices=Surface.choices)
    surface_key = models.CharField(
        max_length=120,
        help_text="web:default, web:<uuid>, discord:dm:<channel id>, discord:<channel id>, api:<key>",
    )
    title = models.CharField(max_length=120, blank=True)
    summary = models.TextField(
        blank=True, help_text="What older turns said, folded from the verbatim history."
    )
    summarised_through = models.BigIntegerField(
        default=0, help_text="Messages up to this id are in the summary instead of the verbatim history."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "surface_key"], name="bot_conversation_one_per_surface_key"
            )
        ]

    def __str__(self) -> str:
        return self.title or self.surface_key


class Message(TenantModel):
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="messages")
    role = models.CharField(max_length=16, choices=Role.choices)
    content = models.TextField()
    tools_called = models.JSONField(default=list, blank=True, help_text="Tool names, in call order.")
    tool_results = models.JSONField(
        default=list, blank=True, help_text="What the answer was grounded on: [{tool, arguments, result}]."
    )
    status = models.CharField(max_length=16, choices=MessageStatus.choices)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    provider = models.CharField(max_length=40, blank=True)
    idempotency_key = models.CharField(
        max_length=200,
        blank=True,
        help_text="Answers: the caller's id for the question (interaction or message id); counted once. "
        "Empty on the member's own turns.",
    )
    remaining = models.IntegerField(
        null=True, blank=True, help_text="AI queries left this month after this answer (empty: unlimited)."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["conversation", "id"])]
        constraints = [
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=~Q(idempotency_key=""),
                name="bot_message_idempotency_key_once",
            )
        ]


class PendingAction(TenantModel):
    """A write the companion proposed (create or pause an alert, pause or resume a bot), done only after
    the member confirms with the token."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="actions")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="actions")
    token = models.CharField(max_length=64, unique=True)
    tool = models.CharField(max_length=40)
    arguments = models.JSONField(default=dict)
    summary = models.CharField(max_length=300)
    state = models.CharField(max_length=16, choices=ActionState.choices, default=ActionState.PENDING)
    result = models.JSONField(default=dict, blank=True)
    expires_at = models.DateTimeField()
    resolved_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
