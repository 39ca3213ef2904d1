"""The one interface every exchange adapter implements, and the value types it speaks.

Services never touch ccxt or the paper engine directly: they call an `ExchangeAdapter` and apply the
`ExchangeOrder` it returns (status, cumulative fill, the individual fills) to the order in the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol


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


class ExchangeAdapter(Protocol):
    venue: str
    is_paper: bool

    def validate_credentials(self) -> KeyPermissions: ...

    def balances(self) -> dict[str, Balance]: ...

    def place_order(self, request: OrderRequest) -> ExchangeOrder: ...

    def cancel_order(self, *, client_order_id: str, exchange_order_id: str, symbol: str) -> ExchangeOrder: ...

    def fetch_order(self, *, client_order_id: str, exchange_order_id: str, symbol: str) -> ExchangeOrder: ...

    def open_orders(self, *, symbol: str | None = None) -> list[ExchangeOrder]: ...

    def fee_schedule(self, *, symbol: str) -> FeeSchedule: ...

    def market_rules(self, *, symbol: str) -> MarketRules: ...
