"""Reading the messages Django's file email backend wrote (one file per connection, messages separated
by a line of 79 dashes)."""

from __future__ import annotations

import email
from collections import Counter
from email.message import Message
from pathlib import Path

SEPARATOR = b"\n" + b"-" * 79 + b"\n"


def messages(directory: Path) -> list[Message]:
    found = []
    for path in sorted(directory.glob("*.log")):
        for chunk in path.read_bytes().split(SEPARATOR):
            if chunk.strip():
                found.append(email.message_from_bytes(chunk.lstrip(b"\n")))
    return found


def per_recipient(directory: Path) -> Counter[str]:
    return Counter(message["To"] for message in messages(directory))
