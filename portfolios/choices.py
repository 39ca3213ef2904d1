"""Choices and numeric precision shared by the portfolio models, services and forms."""

from __future__ import annotations

from decimal import Decimal

from django.db import models

from core.money import Precision

# Every amount is stored with 12 decimal places: enough for satoshis (8) and for prices of
# sub-cent tokens, with room for the division in FIFO cost allocation. See docs/portfolio-math.md.
DECIMAL_PLACES = 12
QUANTUM = Decimal(1).scaleb(-DECIMAL_PLACES)
QUANTITY: Precision = {"max_digits": 28, "decimal_places": DECIMAL_PLACES}
PRICE: Precision = {"max_digits": 28, "decimal_places": DECIMAL_PLACES}
AMOUNT: Precision = {"max_digits": 32, "decimal_places": DECIMAL_PLACES}

# Currencies treated as one US dollar when no direct quote between them exists (docs/portfolio-math.md).
USD_EQUIVALENTS = frozenset({"USD", "USDT", "USDC"})


class PortfolioKind(models.TextChoices):
    MANUAL = "manual", "Manual tracking"
    PAPER = "paper", "Paper trading"
    EXCHANGE = "exchange", "Linked to an exchange account"


class TransactionKind(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"
    DEPOSIT = "deposit", "Deposit"
    WITHDRAWAL = "withdrawal", "Withdrawal"
    FEE = "fee", "Fee"
    TRANSFER_IN = "transfer_in", "Transfer in"
    TRANSFER_OUT = "transfer_out", "Transfer out"


TRADE_KINDS = frozenset({TransactionKind.BUY, TransactionKind.SELL})
CASH_KINDS = frozenset({TransactionKind.DEPOSIT, TransactionKind.WITHDRAWAL, TransactionKind.FEE})
TRANSFER_KINDS = frozenset({TransactionKind.TRANSFER_IN, TransactionKind.TRANSFER_OUT})


class TransactionSource(models.TextChoices):
    MANUAL = "manual", "Entered by hand"
    IMPORT = "import", "CSV import"
    EXCHANGE = "exchange", "Exchange fill"
    API = "api", "API"
    DEMO = "demo", "Demo data"


class Period(models.TextChoices):
    DAY = "1D", "1 day"
    WEEK = "1W", "1 week"
    MONTH = "1M", "1 month"
    YTD = "YTD", "Year to date"
    YEAR = "1Y", "1 year"
    ALL = "ALL", "All time"
