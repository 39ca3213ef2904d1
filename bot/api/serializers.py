"""Companion API shapes."""

from __future__ import annotations

from rest_framework import serializers

from bot.companion.service import QUESTION_MAX_CHARS
from bot.models import MessageStatus, Role, Surface
from core.api import StrictCharField

CONVERSATION_KEY_MAX = 100
CONVERSATION_KEY_PATTERN = r"^[A-Za-z0-9_.:-]+$"


class AskInput(serializers.Serializer):
    text = StrictCharField(max_length=QUESTION_MAX_CHARS, help_text="The question.")
    conversation = serializers.RegexField(
        CONVERSATION_KEY_PATTERN,
        max_length=CONVERSATION_KEY_MAX,
        required=False,
        default="default",
        help_text="Your name for the conversation (letters, digits, _ . : -); questions with the same key "
        "continue one conversation. Default: `default`.",
    )


class ConfirmationOutput(serializers.Serializer):
    token = serializers.CharField(help_text="Send it to the confirm operation to make the change.")
    summary = serializers.CharField()


class ReplyOutput(serializers.Serializer):
    text = serializers.CharField(help_text="The answer (or why there is none).")
    conversation_id = serializers.IntegerField()
    message_id = serializers.IntegerField(allow_null=True)
    status = serializers.ChoiceField(
        choices=[
            MessageStatus.ANSWERED,
            MessageStatus.REFUSED,
            MessageStatus.OVER_LIMIT,
            MessageStatus.ERROR,
            MessageStatus.CONFIRMED,
            MessageStatus.CANCELLED,
        ],
        help_text="answered; refused (it would have stated a figure no tool returned); over_limit (the "
        "plan's AI queries are used up); error (the model could not be reached; nothing was counted); "
        "confirmed / cancelled (after a confirmation).",
    )
    tools_called = serializers.ListField(child=serializers.CharField())
    confirmation = ConfirmationOutput(
        allow_null=True, help_text="A change the companion proposes; nothing changes until it is confirmed."
    )
    remaining = serializers.IntegerField(
        allow_null=True, help_text="AI queries left this month; empty: no limit."
    )


class ConfirmInput(serializers.Serializer):
    token = StrictCharField(max_length=64)
    accept = serializers.BooleanField(help_text="true: make the change; false: drop it.")


class ConversationOutput(serializers.Serializer):
    id = serializers.IntegerField()
    surface = serializers.ChoiceField(choices=Surface.choices, help_text="Where it was held.")
    surface_key = serializers.CharField()
    title = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class MessageOutput(serializers.Serializer):
    id = serializers.IntegerField()
    role = serializers.ChoiceField(choices=Role.choices)
    content = serializers.CharField()
    status = serializers.ChoiceField(choices=MessageStatus.choices)
    tools_called = serializers.ListField(child=serializers.CharField())
    created_at = serializers.DateTimeField()


class ConversationDetailOutput(ConversationOutput):
    messages = MessageOutput(many=True)
