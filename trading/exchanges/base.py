"""The one interface every exchange adapter implements, and the value types it speaks.

Services never touch ccxt or the paper engine directly: they call an `ExchangeAdapter` and apply the
`ExchangeOrder` it returns (status, cumulative fill, the individual fills) to the order in the database.
Where venues differ in kind rather than in answers (the paper exchange keeps its order book in our own
database), the adapter says so through a capability below; no service asks which venue it is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol, Self


class ExchangeError(Exception):
    """Base class of adapter errors."""


class ExchangeRejected(ExchangeError):
    """The venue refused the request (bad parameters, insufficient funds, unknown order): final."""


class ExchangeUnavailable(ExchangeError):
    """The venue cannot be reached or is degraded (circuit open, 5xx, rate limited): try later."""


class OrderStatusUnknown(ExchangeError):
    """A request timed out: the order may or may not exist. Fetch it by client order id before retrying."""


@dataclass(frozen=True)
class Balance:
    currency: str
    free: Decimal
    used: Decimal

    @property
    def total(self) -> Decimal:
        return self.free + self.used


@dataclass(frozen=True)
class FeeSchedule:
    maker: Decimal
    taker: Decimal


@dataclass(frozen=True)
class MarketRules:
    symbol: str
    price_precision: int
    quantity_precision: int
    min_notional: Decimal


@dataclass(frozen=True)
class KeyPermissions:
    can_trade: bool
    can_withdraw: bool
    ip_restricted: bool | None = None


@dataclass(frozen=True)
class Credentials:
    """An API key as the trader typed it (a connection being created) or as stored, decrypted."""

    api_key: str = ""
    secret: str = ""
    passphrase: str = ""


@dataclass(frozen=True)
class OrderRequest:
    client_order_id: str
    symbol: str
    side: str
    type: str
    quantity: Decimal
    price: Decimal | None = None
    stop_price: Decimal | None = None


@dataclass(frozen=True)
class ExchangeFill:
    fill_id: str
    quantity: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    executed_at: datetime


@dataclass(frozen=True)
class ExchangeOrder:
    """What the venue says about one order: fills are every fill known so far (applied idempotently)."""

    client_order_id: str
    exchange_order_id: str
    status: str
    filled_quantity: Decimal = Decimal("0")
    average_price: Decimal | None = None
    fills: tuple[ExchangeFill, ...] = field(default_factory=tuple)
    reason: str = ""


@dataclass(frozen=True)
class RestingMatch:
    """What a traded price did to a resting order on a venue that matches in our database."""

    update: ExchangeOrder
    triggered: bool  # a stop or take-profit order's trigger price was reached


class ExchangeAdapter(Protocol):
    venue: str
    # The trader's API key is needed (and validated, and stored encrypted) to connect.
    needs_credentials: bool
    # A connection to the venue counts against the plan's `exchange_connections`.
    counts_against_plan: bool
    # The venue's order book is our database: an order is placed and matched inside the transaction that
    # writes it, never sent by the `trading.order_submit` task after commit, and resting orders are matched
    # against the feed's prices (`resting_match`).
    places_in_transaction: bool
    # Market orders fill from a quote the caller holds, without reading the database: a fan-out chunk's
    # plans can be executed together (trading/fanout/batch.py, through `reserved` and `buy_quantity_within`).
    can_batch: bool

    @classmethod
    def for_connection(cls, connection, *, portfolio=None, credentials: Credentials | None = None) -> Self:
        """The adapter of a stored connection (its keys decrypted) or of one being created (`credentials`)."""
        ...

    @classmethod
    def trades_portfolio(cls, portfolio) -> bool:
        """May orders on this venue move `portfolio` (paper venues trade paper portfolios only)?"""
        ...

    def validate_credentials(self) -> KeyPermissions: ...

    def balances(self) -> dict[str, Balance]: ...

    def spendable(self, *, currency: str) -> Decimal:
        """What a new buy may spend of `currency` now (open orders' reservations taken off)."""
        ...

    def sellable(self, *, instrument) -> Decimal:
        """How much of `instrument`'s base a new sell may sell now."""
        ...

    def buy_quantity_within(self, *, wanted: Decimal, price: Decimal, available: Decimal, precision: int) -> Decimal:
        """A market buy of up to `wanted` at about `price`, cut to what `available` pays for where the venue
        knows its own price and fees exactly."""
        ...

    def place_order(self, request: OrderRequest, *, quote=None, instrument=None) -> ExchangeOrder:
        """Callers that already hold the pair's quote (marketdata QuoteSnapshot) and instrument pass them."""
        ...

    def resting_match(self, *, order, price: Decimal) -> RestingMatch | None:
        """A traded `price` against a resting `order` (locked by the caller); None where the venue matches
        its own orders and reports their fills through `fetch_order`."""
        ...

    def cancel_order(self, *, client_order_id: str, exchange_order_id: str, symbol: str) -> ExchangeOrder: ...

    def fetch_order(self, *, client_order_id: str, exchange_order_id: str, symbol: str) -> ExchangeOrder: ...

    def open_orders(self, *, symbol: str | None = None) -> list[ExchangeOrder]: ...

    def fee_schedule(self, *, symbol: str) -> FeeSchedule: ...

    def market_rules(self, *, symbol: str) -> MarketRules: ...


class BatchAdapter(ExchangeAdapter, Protocol):
    """An adapter whose `can_batch` is true: what the fan-out batch asks it about rows it has read already."""

    def reserved(self, open_orders, *, side: str) -> Decimal:
        """What `open_orders` (of one side, this connection's) hold back: quote for buys, base units for sells."""
        ...
