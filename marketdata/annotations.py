"""Facts and actions other apps add to the market pages, without marketdata knowing them.

The market pages belong to marketdata, which imports no other domain; trading's regime gatekeeper still
has something to say about every pair. An app registers a provider in its AppConfig.ready():

    register_market_annotation("regime", label="Regime", provider=regime_annotations)

A provider takes the symbols on the page and returns {symbol: Annotation} for those it knows (one query
for the page, not one per row). `/markets` shows each provider as a column and `/markets/<pair>` as a
line of the instrument's facts; a symbol a provider says nothing about shows "—".

Actions are links on the instrument page (alerts registers "Set an alert" with the pair filled in):

    register_market_action("alert", label="Set an alert", url=lambda symbol: ...)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import structlog

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Annotation:
    text: str
    css: str = ""  # a modifier class for the badge, e.g. "regime-bullish"
    title: str = ""  # the longer explanation, shown on hover and on the instrument page


@dataclass(frozen=True)
class AnnotationColumn:
    key: str
    label: str
    provider: Callable[[list[str]], dict[str, Annotation]]


_columns: dict[str, AnnotationColumn] = {}


def register_market_annotation(
    key: str, *, label: str, provider: Callable[[list[str]], dict[str, Annotation]]
) -> None:
    _columns[key] = AnnotationColumn(key=key, label=label, provider=provider)


def market_annotations(symbols: Iterable[str]) -> list[tuple[AnnotationColumn, dict[str, Annotation]]]:
    """Every registered column with its annotations for `symbols`. A provider that fails is left out
    (logged): the prices matter more than the extras."""
    wanted = list(symbols)
    out = []
    for column in _columns.values():
        try:
            values = column.provider(wanted)
        except Exception:
            logger.exception("marketdata.annotation_failed", column=column.key)
            continue
        out.append((column, values))
    return out


@dataclass(frozen=True)
class MarketAction:
    key: str
    label: str
    url: Callable[[str], str]


_actions: dict[str, MarketAction] = {}


def register_market_action(key: str, *, label: str, url: Callable[[str], str]) -> None:
    _actions[key] = MarketAction(key=key, label=label, url=url)


def market_actions(symbol: str) -> list[tuple[str, str]]:
    """(label, link) of every registered action for `symbol`, in registration order."""
    return [(action.label, action.url(symbol)) for action in _actions.values()]
