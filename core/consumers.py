"""The per-user WebSocket every logged-in page opens: anything addressed to the user arrives here."""

from __future__ import annotations

from channels.generic.websocket import AsyncWebsocketConsumer

CLOSE_NOT_FOUND = 4404


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


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

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def user_html(self, event: dict) -> None:
        """An HTML fragment (HTMX out-of-band swap) rendered once by the sender."""
        await self.send(text_data=event["html"])
