"""A stand-in for Discord's HTTP API at the HTTP layer, for the real nextcord client.

nextcord builds every URL from `nextcord.http.Route.BASE` (its REST client and the interaction webhooks
alike), so pointing that at this local aiohttp server captures each call the bot makes: interaction
callbacks, follow-up webhooks, DM channels and messages, with their JSON or multipart bodies. Interactions
are fed into the client as the gateway would (`ConnectionState.parse_interaction_create`), with payloads
shaped as in Discord's API reference (Interaction object, type 2 APPLICATION_COMMAND).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import nextcord
from aiohttp import web
from nextcord.http import Route

from bot.discord.client import NexusBot

APPLICATION_ID = "1100000000000000001"
BOT_USER = {
    "id": APPLICATION_ID,
    "username": "Nexus",
    "discriminator": "0",
    "global_name": None,
    "avatar": None,
    "bot": True,
}
GUILD_ID = "1200000000000000001"
CHANNEL_ID = "1300000000000000001"
DM_CHANNEL_ID = "1300000000000000099"
_ids = itertools.count(1400000000000000001)


def _json(body, status: int = 200) -> web.Response:
    # Exactly as Discord labels it: nextcord decodes a body only when the type is exactly application/json.
    return web.Response(
        body=json.dumps(body).encode(), status=status, headers={"Content-Type": "application/json"}
    )


def snowflake() -> str:
    return str(next(_ids))


@dataclass
class Call:
    method: str
    path: str
    json: dict | None = None
    files: dict[str, bytes] = field(default_factory=dict)
    content_types: dict[str, str] = field(default_factory=dict)


class FakeDiscord:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.commands: dict[str, dict] = {}  # registered global application commands, by name
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner: web.AppRunner | None = None
        self.base = ""

    async def start(self) -> None:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base = f"http://127.0.0.1:{port}/api/v10"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    async def handle(self, request: web.Request) -> web.Response:
        path = request.path.removeprefix("/api/v10")
        call = Call(method=request.method, path=path)
        if request.content_type.startswith("multipart/"):
            reader = await request.multipart()
            async for part in reader:
                data = await part.read()
                if part.name == "payload_json":
                    call.json = json.loads(data)
                else:
                    call.files[part.filename or part.name] = bytes(data)
                    call.content_types[part.filename or part.name] = part.headers.get("Content-Type", "")
        elif request.can_read_body:
            call.json = await request.json()
        self.calls.append(call)
        if path == f"/applications/{APPLICATION_ID}/commands":
            if request.method == "GET":
                return _json(list(self.commands.values()))
            registered = {
                **(call.json or {}),
                "id": snowflake(),
                "application_id": APPLICATION_ID,
                "version": "1",
            }
            registered.setdefault("type", 1)
            self.commands[registered["name"]] = registered
            return _json(registered, status=201)
        if path == "/users/@me" and request.method == "GET":
            return _json(BOT_USER)
        if path.startswith("/interactions/") and path.endswith("/callback"):
            return web.Response(status=204)
        if path.startswith("/webhooks/"):
            return _json(self._message(call))
        if path == "/users/@me/channels":
            return _json({"id": DM_CHANNEL_ID, "type": 1, "recipients": [], "last_message_id": None})
        if path.startswith("/channels/") and path.endswith("/messages"):
            return _json(self._message(call))
        if path.startswith("/channels/") and path.endswith("/typing"):
            return web.Response(status=204)
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    @staticmethod
    def _message(call: Call) -> dict:
        body = call.json or {}
        return {
            "id": snowflake(),
            "channel_id": CHANNEL_ID,
            "type": 0,
            "content": body.get("content", ""),
            "author": BOT_USER,
            "embeds": body.get("embeds", []),
            "attachments": [],
            "mentions": [],
            "mention_roles": [],
            "mention_everyone": False,
            "pinned": False,
            "tts": False,
            "timestamp": "2026-11-30T12:00:00+00:00",
            "edited_timestamp": None,
            "flags": body.get("flags", 0),
            "components": [],
        }

    # --- what the tests look at ----------------------------------------------------------------------

    def responses(self) -> list[Call]:
        """Interaction callbacks and follow-ups, in order."""
        return [c for c in self.calls if c.path.startswith(("/interactions/", "/webhooks/"))]

    def embeds(self) -> list[dict]:
        return [e for c in self.responses() for e in _payload(c).get("embeds", [])]

    def text(self) -> str:
        return json.dumps([_payload(c) for c in self.responses()])


def _payload(call: Call) -> dict:
    body = call.json or {}
    return body.get("data", body) if call.path.endswith("/callback") else body


def discord_user(user_id: str, username: str = "member") -> dict:
    return {
        "id": user_id,
        "username": username,
        "discriminator": "0",
        "global_name": username.title(),
        "avatar": None,
    }


def command_payload(
    name: str, options: list[dict] | None = None, *, user_id: str, dm: bool = False, username: str = "member"
) -> dict:
    """An APPLICATION_COMMAND interaction as Discord sends it over the gateway (INTERACTION_CREATE)."""
    payload: dict = {
        "id": snowflake(),
        "application_id": APPLICATION_ID,
        "type": 2,
        "token": f"interaction-token-{snowflake()}",
        "version": 1,
        "locale": "en-US",
        "app_permissions": "2248473465835073",
        "entitlements": [],
        "authorizing_integration_owners": {"0": GUILD_ID} if not dm else {"1": user_id},
        "data": {"id": snowflake(), "name": name, "type": 1, **({"options": options} if options else {})},
    }
    if dm:
        payload.update(
            channel_id=DM_CHANNEL_ID,
            user=discord_user(user_id, username),
            context=1,
            channel={"id": DM_CHANNEL_ID, "type": 1},
        )
    else:
        payload.update(
            guild_id=GUILD_ID,
            channel_id=CHANNEL_ID,
            guild_locale="en-US",
            context=0,
            channel={"id": CHANNEL_ID, "type": 0, "guild_id": GUILD_ID, "name": "trading"},
            member={
                "user": discord_user(user_id, username),
                "roles": [],
                "joined_at": "2026-01-01T00:00:00+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
                "permissions": "2248473465835073",
                "nick": None,
            },
        )
    return payload


def option(name: str, value, kind: int = 3) -> dict:
    """An option of type STRING (3), INTEGER (4) or BOOLEAN (5)."""
    return {"name": name, "type": kind, "value": value}


def subcommand(name: str, options: list[dict] | None = None) -> dict:
    return {"name": name, "type": 1, "options": options or []}


@asynccontextmanager
async def running_bot(**kwargs):
    """A logged-in NexusBot talking to a FakeDiscord; yields (bot, fake)."""
    fake = FakeDiscord()
    await fake.start()
    previous = Route.BASE
    Route.BASE = fake.base
    executor = ThreadPoolExecutor(max_workers=4)
    bot = NexusBot(executor=executor, **kwargs)
    try:
        await bot.login("test-bot-token")
        # What on_connect does after READY: the commands registered with Discord and their ids associated.
        bot._connection.application_id = int(APPLICATION_ID)
        bot.add_all_application_commands()
        await bot.sync_application_commands(guild_id=None)
        fake.calls.clear()
        yield bot, fake
    finally:
        await bot.close()
        Route.BASE = previous
        executor.shutdown(wait=True)
        await fake.stop()


async def interact(bot: NexusBot, payload: dict, *, timeout: float = 30) -> None:
    """Deliver one interaction as the gateway does and wait until the bot has finished answering it."""
    command = next(c for c in bot.get_all_application_commands() if c.name == payload["data"]["name"])
    payload["data"]["id"] = str(command.command_ids[None])
    before = set(asyncio.all_tasks())
    bot._connection.parse_interaction_create(payload)
    started = [t for t in asyncio.all_tasks() - before if t.get_name().startswith("nextcord:")]
    assert started, "the interaction dispatched nothing"
    await asyncio.wait_for(asyncio.gather(*started), timeout=timeout)


def run(coroutine):
    return asyncio.run(coroutine)


__all__ = ["nextcord"]
