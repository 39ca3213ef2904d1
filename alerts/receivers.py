"""What alerts listen to: the feed's ticks (in the feed process) and trading's events (where they happen)."""

from __future__ import annotations

from alerts.evaluator import on_ticks_published
from marketdata.signals import ticks_published


def connect() -> None:
    ticks_published.connect(on_ticks_published, dispatch_uid="alerts.on_ticks_published")
