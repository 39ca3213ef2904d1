"""Exchange adapters behind one interface (see base.ExchangeAdapter); `adapter_for` picks one per connection."""

from trading.exchanges.base import (
    Balance,
    ExchangeAdapter,
    ExchangeFill,
    ExchangeOrder,
    ExchangeRejected,
    ExchangeUnavailable,
    FeeSchedule,
    KeyPermissions,
    MarketRules,
    OrderRequest,
    OrderStatusUnknown,
)
from trading.exchanges.registry import adapter_for

__all__ = [
    "Balance",
    "ExchangeAdapter",
    "ExchangeFill",
    "ExchangeOrder",
    "ExchangeRejected",
    "ExchangeUnavailable",
    "FeeSchedule",
    "KeyPermissions",
    "MarketRules",
    "OrderRequest",
    "OrderStatusUnknown",
    "adapter_for",
]
