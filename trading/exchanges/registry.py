"""Which adapter serves a venue: the paper exchange, or ccxt with the connection's decrypted keys.

The one place that names the venues' adapters; everything else asks the adapter it is given.
"""

from __future__ import annotations

from decimal import Decimal

from trading.choices import Venue
from trading.exchanges.base import Credentials, ExchangeAdapter
from trading.exchanges.paper import PaperAdapter, resting_orders_crossed


def adapter_class(venue: str) -> type[ExchangeAdapter]:
    if venue == Venue.PAPER:
        return PaperAdapter
    # ccxt takes about a second to import: only processes that reach a real venue load it.
    from trading.exchanges.ccxt_adapter import CcxtAdapter

    return CcxtAdapter


def adapter_for(connection, *, portfolio=None, credentials: Credentials | None = None) -> ExchangeAdapter:
    """The adapter of `connection`; `portfolio` is the one its balances are kept in where the venue is ours,
    `credentials` the key of a connection being created (otherwise the stored one, decrypted)."""
    return adapter_class(connection.venue).for_connection(connection, portfolio=portfolio, credentials=credentials)


def resting_orders_reached(*, symbol: str, price: Decimal) -> list[tuple[str, int]]:
    """(order id, user id) of the resting orders a trade at `price` may fill or trigger, on the venues whose
    order book is our database (the paper exchange). Cross-tenant, read-only."""
    return resting_orders_crossed(symbol=symbol, price=price)
