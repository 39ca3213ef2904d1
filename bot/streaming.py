"""The /assistant page's answer, streamed over the asker's WebSocket while the question's POST is answered.

`AnswerStream` is the `on_event` callback the ask view hands to `companion_ask`: each event (a tool being
called, a chunk of the verified answer) is rendered once as an HTML fragment and sent to the user's group
(core.consumers, handler `user.html`), so every page the user has open receives it.

Only the page that asked has the pending answer's elements, so the fragments travel inside
`<template data-ws-for="pending-<ask id>">`: static/js/nexus.js applies such a message only where an
element with that id exists and drops it everywhere else (no `htmx:oobErrorNoTarget` on other pages or
other tabs, nor after the POST's response has replaced the placeholder). The POST's response carries the
whole answer again, so the page works without the socket, and a fragment that is lost or late changes
nothing.
"""

from __future__ import annotations

import asyncio
import threading

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.template.loader import render_to_string

from core.consumers import user_group

logger = structlog.get_logger(__name__)


def _group_send(group: str, message: dict) -> None:
    layer = get_channel_layer()
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        async_to_sync(layer.group_send)(group, message)
        return
    # This thread runs an event loop (async_to_sync refuses to block it): send from a thread of its own.
    sender = threading.Thread(
        target=asyncio.run, args=(layer.group_send(group, message),), name="assistant-stream"
    )
    sender.start()
    sender.join()


class AnswerStream:
    """`on_event(kind, data)` for one question: "tool" (data: a human label such as "Looking up your
    portfolio…") and "delta" (data: the next chunk of the verified answer)."""

    def __init__(self, *, user_id: int, ask_id: str) -> None:
        self.group = user_group(user_id)
        self.ask_id = ask_id
        self.sent = 0
        self.broken = False

    def __call__(self, kind: str, data: str) -> None:
        if self.broken or kind not in ("tool", "delta") or not data:
            return
        context = {"ask_id": self.ask_id, "kind": kind, "data": data}
        html = render_to_string("bot/partials/stream_event.html", context).strip()
        try:
            _group_send(self.group, {"type": "user.html", "html": html})
        except Exception:  # noqa: BLE001 - the POST's response still carries the answer
            # A channel layer that is down must not cost the asker their answer: stop streaming this one.
            self.broken = True
            logger.warning("assistant.stream_failed", ask_id=self.ask_id, exc_info=True)
            return
        self.sent += 1
