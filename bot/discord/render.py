"""Replies as Discord embeds, inside Discord's limits (https://discord.com/developers/docs/resources/message
#embed-object-embed-limits): a message's content at most 2,000 characters; an embed's title 256,
description 4,096, at most 25 fields, a field's name 256 and value 1,024, and all embeds of one message
together 6,000 characters, at most 10 embeds. A longer answer is split at paragraph, line or word breaks
into several embeds and, past a message's budget, several messages; nothing is cut off.
"""

from __future__ import annotations

from dataclasses import dataclass, field

CONTENT_MAX = 2000
TITLE_MAX = 256
DESCRIPTION_MAX = 4096
FIELDS_MAX = 25
FIELD_NAME_MAX = 256
FIELD_VALUE_MAX = 1024
FOOTER_MAX = 2048
EMBED_TOTAL_MAX = 6000
EMBEDS_PER_MESSAGE = 10

COLOR_INFO = 0x5865F2
COLOR_OK = 0x2ECC71
COLOR_ERROR = 0xE74C3C
CONTINUED = " (cont.)"


@dataclass(frozen=True)
class Field:
    name: str
    value: str
    inline: bool = False


@dataclass(frozen=True)
class Attachment:
    filename: str
    data: bytes


@dataclass
class Reply:
    """What a command answers, before it becomes embeds. `private`: the member's own numbers, sent so that
    only they see it (ephemeral in a server, or in a DM) unless they ask to share."""

    title: str
    description: str = ""
    fields: list[Field] = field(default_factory=list)
    footer: str = ""
    url: str = ""
    color: int = COLOR_INFO
    image: Attachment | None = None
    private: bool = True
    error: bool = False


def error_reply(message: str, *, title: str = "That did not work") -> Reply:
    return Reply(title=title, description=message, color=COLOR_ERROR, error=True)


def split_text(text: str, limit: int) -> list[str]:
    """`text` in pieces of at most `limit` characters, broken at a paragraph, then a line, then a space if one
    is in the second half of the piece; a word longer than that is cut. Joining the pieces (with the break
    characters that were dropped) gives the text back."""
    if limit < 1:
        raise ValueError("limit must be positive")
    text = text or ""
    pieces: list[str] = []
    while len(text) > limit:
        window = text[: limit + 1]
        cut = -1
        for separator in ("\n\n", "\n", " "):
            position = window.rfind(separator, limit // 2, limit + 1)
            if position > 0:
                cut = position
                pieces.append(text[:cut].rstrip())
                text = text[cut + len(separator) :]
                break
        if cut < 0:
            pieces.append(text[:limit])
            text = text[limit:]
    if text or not pieces:
        pieces.append(text)
    return [piece for piece in pieces if piece] or [""]


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def embed_size(embed: dict) -> int:
    """The characters Discord counts towards the 6,000 of a message."""
    size = len(embed.get("title", "")) + len(embed.get("description", ""))
    size += len(embed.get("footer", {}).get("text", ""))
    size += sum(len(f["name"]) + len(f["value"]) for f in embed.get("fields", []))
    return size


def _field_parts(item: Field) -> list[dict]:
    name = _clip(item.name.strip() or "\u200b", FIELD_NAME_MAX)
    values = split_text(item.value.strip() or "\u200b", FIELD_VALUE_MAX)
    parts = []
    for index, value in enumerate(values):
        label = name if index == 0 else _clip(name + CONTINUED, FIELD_NAME_MAX)
        parts.append({"name": label, "value": value or "\u200b", "inline": item.inline})
    return parts


def embeds_for(reply: Reply) -> list[dict]:
    """The reply as embed payloads (Discord's JSON shape), each within every embed limit."""
    title = _clip(reply.title.strip() or "Nexus", TITLE_MAX)
    continued = _clip(title + CONTINUED, TITLE_MAX)
    footer = _clip(reply.footer, 512)

    def new(index: int, description: str = "") -> dict:
        embed: dict = {"title": title if index == 0 else continued, "color": reply.color}
        if description:
            embed["description"] = description
        if reply.url and index == 0:
            embed["url"] = reply.url
        return embed

    embeds = [new(i, chunk) for i, chunk in enumerate(split_text(reply.description, DESCRIPTION_MAX))]
    budget = EMBED_TOTAL_MAX - len(footer)
    for item in reply.fields:
        for part in _field_parts(item):
            current = embeds[-1]
            fields = current.setdefault("fields", [])
            if (
                len(fields) >= FIELDS_MAX
                or embed_size(current) + len(part["name"]) + len(part["value"]) > budget
            ):
                current = new(len(embeds))
                embeds.append(current)
                fields = current.setdefault("fields", [])
            fields.append(part)
    for embed in embeds:
        if not embed.get("fields"):
            embed.pop("fields", None)
    if footer:
        embeds[-1]["footer"] = {"text": footer}
    if reply.image is not None:
        embeds[0]["image"] = {"url": f"attachment://{reply.image.filename}"}
    return embeds


def messages_for(embeds: list[dict]) -> list[list[dict]]:
    """Embeds grouped into messages: at most 10 per message and 6,000 characters in all."""
    messages: list[list[dict]] = []
    current: list[dict] = []
    size = 0
    for embed in embeds:
        length = embed_size(embed)
        if current and (len(current) >= EMBEDS_PER_MESSAGE or size + length > EMBED_TOTAL_MAX):
            messages.append(current)
            current, size = [], 0
        current.append(embed)
        size += length
    if current:
        messages.append(current)
    return messages


def render(reply: Reply) -> list[list[dict]]:
    """The messages (each a list of embed payloads) that carry `reply`."""
    return messages_for(embeds_for(reply))


def content_messages(text: str) -> list[str]:
    """Plain text (a DM answer) in messages of at most 2,000 characters."""
    return split_text(text, CONTENT_MAX)
