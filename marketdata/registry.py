"""The instruments Nexus lists out of the box. BTC/USDT and BTC/USDC have recorded data to replay."""

from __future__ import annotations

from decimal import Decimal

DEFAULT_INSTRUMENTS: list[dict] = [
    {
        "symbol": "BTC/USDT",
        "price_precision": 2,
        "quantity_precision": 5,
        "min_notional": Decimal("10"),
        "reference_price": Decimal("23140.48"),
    },
    {
        "symbol": "BTC/USDC",
        "price_precision": 2,
        "quantity_precision": 5,
        "min_notional": Decimal("10"),
        "reference_price": Decimal("23143.82"),
    },
    {
        "symbol": "ETH/USDT",
        "price_precision": 2,
        "quantity_precision": 4,
        "min_notional": Decimal("10"),
        "reference_price": Decimal("1605.20"),
    },
    {
        "symbol": "SOL/USDT",
        "price_precision": 2,
        "quantity_precision": 2,
        "min_notional": Decimal("10"),
        "reference_price": Decimal("22.45"),
    },
    {
        "symbol": "XRP/USDT",
        "price_precision": 4,
        "quantity_precision": 0,
        "min_notional": Decimal("10"),
        "reference_price": Decimal("0.3781"),
    },
    {
        "symbol": "ETH/BTC",
        "price_precision": 5,
        "quantity_precision": 4,
        "min_notional": Decimal("0.0001"),
        "reference_price": Decimal("0.06935"),
    },
]
