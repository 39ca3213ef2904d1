"""REST API for the AI companion (under /api/v1/companion/): ask, confirm a proposed change, and the
conversations (list, get with messages, delete). Everything goes through bot/companion/service.py, the
companion's one entry point for every surface; questions asked here are the "api" surface.

Idempotency: the `Idempotency-Key` header is the companion's own idempotency key (prefixed `api:`), so a
retried question returns the stored answer and consumes no second AI query. Without the header each
request is a new question.
"""

from __future__ import annotations

import hashlib
import uuid

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from bot.api.serializers import (
    AskInput,
    ConfirmInput,
    ConversationDetailOutput,
    ConversationOutput,
    ReplyOutput,
)
from bot.companion.service import (
    IDEMPOTENCY_KEY_MAX_CHARS,
    CompanionReply,
    companion_ask,
    companion_confirm,
    conversation_delete,
    conversation_get,
    conversation_list,
    conversation_messages,
)
from bot.models import Conversation, Surface
from core.api import ETagMixin
from core.errors import DomainError
from core.rls import tenant

KEY_PREFIX = "api:"


def _conversation(request: Request, conversation_id: int):
    try:
        return conversation_get(user=request.user, pk=conversation_id)
    except DomainError:
        raise exceptions.NotFound("No such conversation.") from None


def _reply_data(reply: CompanionReply) -> dict:
    return ReplyOutput(
        {
            "text": reply.text,
            "conversation_id": reply.conversation_id,
            "message_id": reply.message_id,
            "status": reply.status,
            "tools_called": reply.tools_called,
            "confirmation": reply.confirmation,
            "remaining": reply.remaining,
        }
    ).data


class AskApi(APIView):
    # Asking reads the member's data; the companion's writes wait for a confirmation, which needs trade.
    required_scopes = {"POST": "read"}

    serializer_class = ReplyOutput

    @extend_schema(
        summary="Ask the companion",
        description="Answers from your Nexus data (portfolio, positions, prices, candles, regime, "
        "performance, alerts, bots, orders). An answer consumes one AI query of your plan; over the limit "
        "the reply's status is `over_limit` and says which plan allows more. Changes it proposes (create or "
        "pause an alert, pause or resume a bot) come back as `confirmation` and need the confirm operation.",
        request=AskInput,
        responses={200: ReplyOutput},
        examples=[
            OpenApiExample(
                "A question",
                value={"text": "How is my BTC position?", "conversation": "default"},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        data = AskInput(data=request.data)
        data.is_valid(raise_exception=True)
        key = f"{KEY_PREFIX}{request.headers.get('Idempotency-Key') or uuid.uuid4().hex}"
        if len(key) > IDEMPOTENCY_KEY_MAX_CHARS:  # a long client key, stored as its digest
            key = f"{KEY_PREFIX}sha256:{hashlib.sha256(key.encode()).hexdigest()}"
        reply = companion_ask(
            user=request.user,
            text=data.validated_data["text"],
            surface=Surface.API,
            surface_key=f"{Surface.API}:{data.validated_data['conversation']}",
            idempotency_key=key,
        )
        return Response(_reply_data(reply))


class ConfirmApi(APIView):
    serializer_class = ReplyOutput

    @extend_schema(
        summary="Confirm or cancel a change the companion proposed",
        description="Confirming twice returns the first outcome. Consumes no AI query.",
        request=ConfirmInput,
        responses={200: ReplyOutput},
    )
    def post(self, request: Request, conversation_id: int) -> Response:
        conversation = _conversation(request, conversation_id)
        data = ConfirmInput(data=request.data)
        data.is_valid(raise_exception=True)
        reply = companion_confirm(user=request.user, conversation_id=conversation.pk, **data.validated_data)
        return Response(_reply_data(reply))


class ConversationListApi(generics.ListAPIView):
    serializer_class = ConversationOutput
    ordering = ("-updated_at", "-id")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator's call
            return Conversation.objects.none()
        return conversation_list(user=self.request.user)

    @extend_schema(
        summary="List conversations (most recent first)",
        description="Every conversation with the companion, on the web, Discord or here.",
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class ConversationDetailApi(ETagMixin, APIView):
    serializer_class = ConversationDetailOutput

    @extend_schema(summary="Get a conversation with its messages", responses={200: ConversationDetailOutput})
    def get(self, request: Request, conversation_id: int) -> Response:
        with tenant(request.user.pk):
            conversation = _conversation(request, conversation_id)
            messages = list(conversation_messages(conversation=conversation))
        fields = ConversationOutput(conversation).data
        body = ConversationDetailOutput({**fields, "messages": messages}).data
        return Response(body)

    @extend_schema(summary="Delete a conversation", description="With its messages.", responses={204: None})
    def delete(self, request: Request, conversation_id: int) -> Response:
        conversation = _conversation(request, conversation_id)
        conversation_delete(user=request.user, conversation_id=conversation.pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
