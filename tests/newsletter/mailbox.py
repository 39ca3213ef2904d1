"""Reading the messages Django's file email backend wrote (one file per connection, messages separated
by a line of 79 dashes), and those core.email_backends.IdempotentFileBackend wrote (one .eml file per
idempotency key)."""

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
    for path in sorted(directory.glob("*.eml")):
        found.append(email.message_from_bytes(path.read_bytes()))
    return found


def dropped(directory: Path) -> list[str]:
    """Idempotency keys of repeats the idempotent file backend dropped."""
    log = directory / "dropped-repeats.txt"
    return log.read_text().split() if log.exists() else []


def per_recipient(directory: Path) -> Counter[str]:
    return Counter(message["To"] for message in messages(directory))
