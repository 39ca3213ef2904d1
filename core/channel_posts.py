"""Posting to a chat channel (a Discord channel today) without importing the app that owns the client.

The bot registers its sender from BotConfig.ready(); apps above it (automation) call `channel_post`.
Like the notification channels, the registry keeps core free of any chat client:

    register_channel_poster("discord", sender)          # bot/apps.py
    channel_post(service="discord", channel_id="123", text="BTC crossed 70,000")

A sender raises `ChannelPostFailed` with a message a trader can act on when the post cannot be made.
"""

from __future__ import annotations

from collections.abc import Callable

ChannelPoster = Callable[[str, str], None]

_posters: dict[str, ChannelPoster] = {}


class ChannelPostFailed(Exception):
    """The post could not be made; the message says why (not configured, refused, unreachable)."""


def register_channel_poster(service: str, sender: ChannelPoster) -> None:
    """Add (or replace, when a module is reloaded) the sender of `service`: sender(channel_id, text)."""
    _posters[service] = sender


def channel_poster_services() -> list[str]:
    return sorted(_posters)


def channel_post(*, service: str, channel_id: str, text: str) -> None:
    sender = _posters.get(service)
    if sender is None:
        raise ChannelPostFailed(f"Posting to {service} is not available on this server.")
    sender(channel_id, text)
