"""The per-user WebSocket every logged-in page opens: anything addressed to the user arrives here."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer

from core.presence import SocketPresence

# "Service restart": the pages' WebSocket extension reconnects after it (and not after a normal close).
CLOSE_RECONNECT = 1012

CLOSE_NOT_FOUND = 4404


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


# The users with a page open (its per-user socket, below): pushes to `user_group` are rendered and sent
# only for them (core.presence). Renewed every PAGE_PRESENCE_EVERY seconds by the web processes.
page_presence = SocketPresence("page.socket")
PAGE_PRESENCE_EVERY = 30
PAGE_PRESENCE_SECONDS = 90


def user_sockets_reauthenticate(user_id: int) -> None:
    """Close every open WebSocket of the user. The pages reconnect by themselves, and a connection checks
    its session again: after "log out everywhere" or a password change only still-valid sessions get in."""
    async_to_sync(get_channel_layer().group_send)(user_group(user_id), {"type": "user.reauthenticate"})

class RouteNotFoundConsumer(AsyncWebsocketConsumer):
    """A socket path no app serves: accepted only to be closed with 4404 (Channels' router would raise)."""

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_NOT_FOUND)


class UserEventsConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        self.group = user_group(user.pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.present_as = user.pk
        await page_presence.enter(user.pk, every=PAGE_PRESENCE_EVERY, seconds=PAGE_PRESENCE_SECONDS)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "present_as"):
            page_presence.leave(self.present_as)
            del self.present_as
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def user_reauthenticate(self, event: dict) -> None:
        await self.close(code=CLOSE_RECONNECT)

    async def user_html(self, event: dict) -> None:
        """An HTML fragment (HTMX out-of-band swap) rendered once by the sender."""
        await self.send(text_data=event["html"])
