"""The `discord` notification channel: a direct message from the bot, sent by the Celery worker through
Discord's REST API (the bot process is not involved), registered from BotConfig.ready().

    POST /users/@me/channels {"recipient_id": <discord user id>}   -> the DM channel
    POST /channels/<id>/messages {"embeds": [...]}                 -> the message

Exactly once per (notification, channel) comes from core.notifications' delivery table. Discord's rate
limits: a 429 names how long to wait (`retry_after` in the body, or the Retry-After header); a short wait
is waited out and the call retried once, a longer one raises DeliveryFailed with that wait, so the delivery
stays pending and the queue retries it no sooner. An account that is not linked, or whose DMs are closed,
is refused (not retried); network errors and 5xx are retried.
"""

from __future__ import annotations

import time

import requests
import structlog
from django.conf import settings

from accounts.selectors import discord_uid
from bot.discord.render import COLOR_INFO, FOOTER_MAX, split_text
from core.channel_posts import ChannelPostFailed
from core.models import Notification
from core.notifications import DeliveryFailed, DeliveryRefused, absolute_url

logger = structlog.get_logger(__name__)

TIMEOUT = (5, 15)
# A 429 asking to wait at most this long is waited out inline (once); longer waits go back to the queue.
INLINE_WAIT_MAX = 2.0
# Discord's JSON error codes that mean the message can never be delivered.
CANNOT_MESSAGE_USER = 50007
UNKNOWN_USER = 10013
_sleep = time.sleep


class DiscordRateLimited(DeliveryFailed):
    """Discord asked us to wait `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"Discord rate limit: retry after {retry_after:.1f} s", retry_after=retry_after)


def discord_available(user) -> bool:
    """The channel is offered when the bot is configured and the user has linked a Discord account."""
    return bool(settings.DISCORD_BOT_TOKEN) and discord_uid(user_id=user.pk) is not None


def _retry_after(response: requests.Response) -> float:
    try:
        body = response.json()
        value = float(body.get("retry_after"))
    except (ValueError, TypeError, AttributeError):
        try:
            value = float(response.headers.get("Retry-After", "1"))
        except ValueError:
            value = 1.0
    return max(0.0, value)


def _error_code(response: requests.Response) -> int | None:
    try:
        return int(response.json().get("code"))
    except (ValueError, TypeError, AttributeError):
        return None


def discord_request(method: str, path: str, *, json: dict) -> dict:
    """One Discord REST call with the bot token; a short 429 is waited out and retried once."""
    url = f"{settings.DISCORD_API_BASE.rstrip('/')}{path}"
    headers = {"Authorization": f"Bot {settings.DISCORD_BOT_TOKEN}", "User-Agent": "Nexus (https://nexus, 1)"}
    for attempt in (1, 2):
        try:
            response = requests.request(method, url, json=json, headers=headers, timeout=TIMEOUT)
        except requests.RequestException as exc:
            raise DeliveryFailed(f"Discord unreachable: {exc.__class__.__name__}") from exc
        if response.status_code == 429:
            wait = _retry_after(response)
            if attempt == 1 and wait <= INLINE_WAIT_MAX:
                logger.info("discord.rate_limited_wait", path=path, retry_after=wait)
                _sleep(wait)
                continue
            raise DiscordRateLimited(wait)
        if response.status_code >= 500:
            raise DeliveryFailed(f"Discord answered {response.status_code}")
        if response.status_code == 401:
            raise DeliveryFailed("Discord refused the bot token (401): check DISCORD_BOT_TOKEN")
        if response.status_code >= 400:
            code = _error_code(response)
            if code == CANNOT_MESSAGE_USER:
                raise DeliveryRefused(
                    "Discord does not let the bot message this account (direct messages closed)."
                )
            if code == UNKNOWN_USER:
                raise DeliveryRefused("The linked Discord account no longer exists.")
            raise DeliveryRefused(f"Discord refused the message ({response.status_code}, code {code}).")
        return response.json() if response.content else {}
    raise DiscordRateLimited(INLINE_WAIT_MAX)  # not reached: the second 429 raises above


def notification_embed(notification: Notification) -> dict:
    embed: dict = {
        "title": notification.kind.replace(".", " · ").replace("_", " ").capitalize()[:256],
        "description": split_text(notification.message, 4096)[0],
        "color": COLOR_INFO,
        "timestamp": notification.created_at.isoformat(),
        "footer": {
            "text": "Nexus · choose what reaches Discord under Notifications → Preferences"[:FOOTER_MAX]
        },
    }
    if notification.link:
        embed["url"] = absolute_url(notification.link)
    return embed


def send_discord(notification: Notification) -> None:
    """Deliver `notification` as a DM from the bot. Raises DeliveryFailed (retry) or DeliveryRefused."""
    if not settings.DISCORD_BOT_TOKEN:
        raise DeliveryRefused("The Discord bot is not configured (DISCORD_BOT_TOKEN is not set).")
    uid = discord_uid(user_id=notification.user_id)
    if uid is None:
        raise DeliveryRefused("No Discord account is linked; link one under Settings → Discord.")
    channel = discord_request("POST", "/users/@me/channels", json={"recipient_id": uid})
    channel_id = channel.get("id")
    if not channel_id:
        raise DeliveryFailed("Discord did not return a DM channel")
    discord_request(
        "POST", f"/channels/{channel_id}/messages", json={"embeds": [notification_embed(notification)]}
    )
    logger.info("discord.notification_sent", notification_id=notification.pk, user_id=notification.user_id)


def post_to_channel(channel_id: str, text: str) -> None:
    """Post `text` to a Discord channel as the bot (the sender core.channel_posts calls for "discord")."""
    if not settings.DISCORD_BOT_TOKEN:
        raise ChannelPostFailed("The Discord bot is not configured (DISCORD_BOT_TOKEN is not set).")
    if not str(channel_id).isdigit():
        raise ChannelPostFailed("A Discord channel id is a number (right-click the channel, Copy Channel ID).")
    try:
        for part in split_text(text, 2000):
            discord_request("POST", f"/channels/{channel_id}/messages", json={"content": part})
    except (DeliveryFailed, DeliveryRefused) as exc:
        raise ChannelPostFailed(str(exc) or "Discord refused the message.") from exc
    logger.info("discord.channel_post_sent", channel_id=channel_id)
