"""The companion's web chat (/assistant): conversations, questions, streamed answers, confirmations.

A question is an ordinary POST (HTMX or not). While it is answered, every event of the companion (a tool
being called, a chunk of the verified answer) is pushed over the asker's WebSocket (bot/streaming.py);
the response then carries the finished turn, which replaces the streamed placeholder, so the page works
without the socket too.
"""

from __future__ import annotations

import functools
import uuid
from dataclasses import dataclass, field

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from billing.choices import Feature
from billing.selectors import entitlement_remaining
from bot.companion.service import (
    companion_ask,
    companion_confirm,
    conversation_delete,
    conversation_get,
    conversation_list,
    conversation_messages,
)
from bot.forms import DEFAULT_KEY, AskForm, ConfirmForm
from bot.models import ActionState, Conversation, Surface
from bot.selectors import conversation_for_surface, pending_action_for
from bot.streaming import AnswerStream
from core.errors import DomainError
from core.forms import form_add_domain_error

SUGGESTIONS = (
    "How is my BTC position?",
    "How is my portfolio doing?",
    "What's the regime on ETH/USDT?",
    "What is the price of BTC/USDT?",
    "Show my alerts",
    "What does RSI mean?",
)
CONVERSATIONS_SHOWN = 50


def in_user_timezone(view):
    """Times on the page in the trader's own time zone (Settings)."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        with timezone.override(getattr(request.user, "time_zone", None) or "UTC"):
            return view(request, *args, **kwargs)

    return wrapper


@dataclass(frozen=True)
class Said:
    """One side of a turn as the page shows it, from a stored message or from a fresh reply."""

    role: str
    text: str
    status: str = "answered"
    tools: list[str] = field(default_factory=list)
    confirmation: object | None = None  # has .token and .summary
    conversation_id: int | None = None
    at: object | None = None

    @property
    def tool_labels(self) -> list[str]:
        return [str(name).replace("_", " ") for name in self.tools]


def _said_from_message(message, *, confirmation=None) -> Said:
    return Said(
        role=message.role,
        text=message.content,
        status=message.status,
        tools=list(message.tools_called or []),
        confirmation=confirmation,
        conversation_id=message.conversation_id,
        at=message.created_at,
    )


def _said_from_reply(reply) -> Said:
    return Said(
        role="assistant",
        text=reply.text,
        status=reply.status,
        tools=list(reply.tools_called or []),
        confirmation=reply.confirmation,
        conversation_id=reply.conversation_id,
        at=timezone.now(),
    )


def _web_conversations(user) -> list[Conversation]:
    return list(conversation_list(user=user).filter(surface=Surface.WEB)[:CONVERSATIONS_SHOWN])


def _web_conversation(request: HttpRequest, pk) -> Conversation:
    try:
        conversation = conversation_get(user=request.user, pk=pk)
    except DomainError:
        raise Http404("No such conversation") from None
    if conversation.surface != Surface.WEB:
        raise Http404("No such conversation")
    return conversation


def _transcript(conversation: Conversation | None) -> list[Said]:
    if conversation is None:
        return []
    rows = list(conversation_messages(conversation=conversation))
    said = [_said_from_message(message) for message in rows]
    # A write the companion proposed in its last answer can still be confirmed after a reload.
    last = len(rows) - 1
    if rows and rows[last].role == "assistant":
        action = pending_action_for(message=rows[last])
        if action is not None and action.state == ActionState.PENDING and action.expires_at > timezone.now():
            said[last] = _said_from_message(rows[last], confirmation=action)
    return said


def _remaining(user) -> int | None:
    return entitlement_remaining(user=user, feature=Feature.AI_QUERIES)


def _fresh_form(*, conversation: Conversation | None, key: str) -> AskForm:
    return AskForm(
        initial={
            "ask_id": uuid.uuid4().hex,
            "conversation": conversation.pk if conversation else None,
            "key": "" if conversation else key,
        }
    )


def _page(
    request: HttpRequest,
    *,
    conversation: Conversation | None,
    key: str = DEFAULT_KEY,
    form: AskForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context = {
        "conversation": conversation,
        "conversations": _web_conversations(request.user),
        "transcript": _transcript(conversation),
        "form": form or _fresh_form(conversation=conversation, key=key),
        "remaining": _remaining(request.user),
        "suggestions": SUGGESTIONS,
    }
    return render(request, "bot/assistant.html", context, status=status)


@login_required
@require_GET
@in_user_timezone
def assistant_view(request: HttpRequest) -> HttpResponse:
    """The latest web conversation, or the default one when there is none yet."""
    conversations = _web_conversations(request.user)
    if conversations:
        return _page(request, conversation=conversations[0])
    return _page(request, conversation=None, key=DEFAULT_KEY)


@login_required
@require_GET
@in_user_timezone
def assistant_new_view(request: HttpRequest) -> HttpResponse:
    """An empty conversation: stored when its first question is asked."""
    return _page(request, conversation=None, key=uuid.uuid4().hex)


@login_required
@require_GET
@in_user_timezone
def conversation_view(request: HttpRequest, pk: int) -> HttpResponse:
    return _page(request, conversation=_web_conversation(request, pk))


def _surface_key(request: HttpRequest, form: AskForm) -> tuple[Conversation | None, str]:
    if form.cleaned_data.get("conversation"):
        conversation = _web_conversation(request, form.cleaned_data["conversation"])
        return conversation, conversation.surface_key
    surface_key = f"web:{form.cleaned_data['key']}"
    return conversation_for_surface(user=request.user, surface_key=surface_key), surface_key


@login_required
@require_POST
@in_user_timezone
def assistant_ask_view(request: HttpRequest) -> HttpResponse:
    form = AskForm(request.POST)
    reply = None
    conversation = None
    if form.is_valid():
        conversation, surface_key = _surface_key(request, form)
        ask_id = form.cleaned_data["ask_id"].hex
        try:
            reply = companion_ask(
                user=request.user,
                text=form.cleaned_data["question"],
                surface=Surface.WEB,
                surface_key=surface_key,
                idempotency_key=f"web:{ask_id}",
                on_event=AnswerStream(user_id=request.user.pk, ask_id=ask_id) if request.htmx else None,
            )
        except DomainError as exc:
            form_add_domain_error(form=form, error=exc, field_names={"text": "question"})
    if reply is None:
        if not request.htmx:
            key = form.cleaned_data.get("key") or DEFAULT_KEY
            return _page(request, conversation=conversation, key=key, form=form, status=400)
        # HTMX swaps only 2xx responses: the form comes back with its errors in place, and the pending
        # placeholder the page inserted is removed (static/js/assistant.js).
        ask_id = request.POST.get("ask_id", "").replace("-", "").lower()
        return render(request, "bot/partials/ask_form.html", {"form": form, "failed_ask_id": ask_id})
    conversation_url = reverse("assistant_conversation", args=[reply.conversation_id])
    if not request.htmx:
        return redirect(f"{conversation_url}#turn-{form.cleaned_data['ask_id'].hex}")
    conversation = _web_conversation(request, reply.conversation_id)
    context = {
        "form": _fresh_form(conversation=conversation, key=DEFAULT_KEY),
        "ask_id": form.cleaned_data["ask_id"].hex,
        "question": Said(role="user", text=form.cleaned_data["question"], at=timezone.now()),
        "answer": _said_from_reply(reply),
        "remaining": reply.remaining if reply.status != "error" else _remaining(request.user),
        "conversation": conversation,
        "conversations": _web_conversations(request.user),
    }
    response = render(request, "bot/partials/ask_response.html", context)
    if request.htmx.current_url_abs_path != conversation_url:
        response["HX-Push-Url"] = conversation_url
    return response


@login_required
@require_POST
@in_user_timezone
def assistant_confirm_view(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _web_conversation(request, pk)
    form = ConfirmForm(request.POST)
    if not form.is_valid():
        return HttpResponse("Confirm or cancel with the buttons under the answer.", status=400)
    try:
        reply = companion_confirm(
            user=request.user,
            conversation_id=conversation.pk,
            token=form.cleaned_data["token"],
            accept=form.cleaned_data["accept"],
        )
    except DomainError as exc:
        if request.htmx:
            return render(
                request,
                "bot/partials/said.html",
                {"said": Said(role="assistant", text=str(exc), status="error")},
            )
        messages.error(request, str(exc))
        return redirect("assistant_conversation", pk=conversation.pk)
    if not request.htmx:
        return redirect("assistant_conversation", pk=conversation.pk)
    return render(request, "bot/partials/said.html", {"said": _said_from_reply(reply)})


@login_required
@require_http_methods(["GET", "POST"])
@in_user_timezone
def conversation_delete_view(request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks "delete this conversation?" on a page of its own (works without JavaScript); POST deletes."""
    conversation = _web_conversation(request, pk)
    if request.method == "POST":
        conversation_delete(user=request.user, conversation_id=conversation.pk)
        messages.success(request, f"Conversation “{conversation}” deleted.")
        return redirect("assistant")
    return render(request, "bot/conversation_delete.html", {"conversation": conversation})
