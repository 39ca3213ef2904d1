"""Links other apps add to each position row of the dashboard, without portfolios knowing them.

Portfolios sits below alerts and trading in the dependency order, so it cannot link to their pages
itself; an app registers an action in its AppConfig.ready() and every position row (the page and its
live updates) shows it:

    register_position_action("alert", label="Alert", url=lambda *, symbol, portfolio_id: ...)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class PositionAction:
    key: str
    label: str
    url: Callable[..., str]  # url(symbol=..., portfolio_id=...)


_actions: dict[str, PositionAction] = {}


def register_position_action(key: str, *, label: str, url: Callable[..., str]) -> None:
    _actions[key] = PositionAction(key=key, label=label, url=url)


def position_actions(*, symbol: str, portfolio_id: int) -> list[tuple[str, str]]:
    """(label, link) of every registered action for one position, in registration order."""
    return [(action.label, action.url(symbol=symbol, portfolio_id=portfolio_id)) for action in _actions.values()]
