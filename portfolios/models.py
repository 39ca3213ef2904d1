"""Portfolios, their transactions, and the state derived from them (FIFO lots, positions, cash).

Transactions are the source of truth. Lots, positions and cash balances are derived by
`portfolios.ledger` and written by `portfolios.services` in the same database transaction as the
transaction row, so they never disagree. Every table here is tenant data: it has `user_id` and RLS.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

from core.models import TenantModel
from core.money import ZERO
from portfolios.choices import AMOUNT, PRICE, QUANTITY, PortfolioKind, TransactionKind, TransactionSource


class Portfolio(TenantModel):
    name = models.CharField(max_length=80)
    base_currency = models.CharField(
        max_length=16, help_text="Everything in this portfolio is valued in this currency."
    )
    kind = models.CharField(max_length=16, choices=PortfolioKind.choices, default=PortfolioKind.MANUAL)
    allow_short = models.BooleanField(
        default=False, help_text="Allow sells beyond the quantity held (opens a short position)."
    )
    # The trading app's exchange connection this portfolio mirrors (kind "exchange"). A plain id, not a
    # foreign key: portfolios does not import trading (dependencies point the other way).
    exchange_connection_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="portfolios_portfolio_unique_name")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def strict_cash(self) -> bool:
        """Paper portfolios cannot spend cash they do not hold; others count a shortfall as money added."""
        return self.kind == PortfolioKind.PAPER


class Transaction(TenantModel):
    # No index of its own: (portfolio, executed_at, id) and the unique (portfolio, external_id) lead with it.
    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="transactions", db_index=False)
    kind = models.CharField(max_length=16, choices=TransactionKind.choices)
    instrument = models.ForeignKey(
        "marketdata.Instrument", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    currency = models.CharField(
        max_length=16, help_text="Cash currency moved: the instrument's quote currency for trades."
    )
    quantity = models.DecimalField(**QUANTITY, help_text="Units of the base asset, or the cash amount.")
    price = models.DecimalField(**PRICE, null=True, blank=True, help_text="Per unit, in the quote currency.")
    fee = models.DecimalField(**AMOUNT, default=ZERO)
    fee_currency = models.CharField(max_length=16, blank=True)
    executed_at = models.DateTimeField()
    note = models.CharField(max_length=500, blank=True)
    # NULL, not "", means "no id": the unique constraint below only applies to rows that have one.
    external_id = models.CharField(  # noqa: DJ001
        max_length=128,
        null=True,
        blank=True,
        help_text="Id at the source (exchange, import file); de-duplicates.",
    )
    source = models.CharField(
        max_length=16, choices=TransactionSource.choices, default=TransactionSource.MANUAL
    )
    # Derived by the ledger when the transaction is applied (and again on a rebuild).
    realized_pnl = models.DecimalField(
        **AMOUNT, default=ZERO, help_text="In the instrument's quote currency."
    )
    flow_amount = models.DecimalField(
        **AMOUNT,
        default=ZERO,
        help_text="Money added (+) or taken out (-) of the portfolio, in flow_currency.",
    )
    flow_currency = models.CharField(max_length=16, blank=True)
    funding = models.DecimalField(
        **AMOUNT, default=ZERO, help_text="Cash this transaction needed beyond the balance, counted as added."
    )
    fee_funding = models.DecimalField(
        **AMOUNT,
        default=ZERO,
        help_text="Same as funding, for a fee paid in a third currency (fee_currency).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-executed_at", "-id"]
        indexes = [
            models.Index(fields=["portfolio", "executed_at", "id"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "external_id"],
                condition=Q(external_id__isnull=False),
                name="portfolios_transaction_unique_external_id",
            ),
            models.CheckConstraint(
                condition=Q(quantity__gt=0), name="portfolios_transaction_quantity_positive"
            ),
            models.CheckConstraint(condition=Q(fee__gte=0), name="portfolios_transaction_fee_not_negative"),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.quantity} {self.instrument or self.currency}"


class Position(TenantModel):
    """What a portfolio holds of one instrument's base asset, with cost and P&L in its quote currency."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="positions")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.PROTECT, related_name="+")
    quantity = models.DecimalField(**QUANTITY, default=ZERO, help_text="Negative for a short position.")
    cost_basis = models.DecimalField(
        **AMOUNT, default=ZERO, help_text="Cost of the open lots, fees included."
    )
    realized_pnl = models.DecimalField(**AMOUNT, default=ZERO)
    fees_paid = models.DecimalField(**AMOUNT, default=ZERO, help_text="Trade fees, in the quote currency.")
    last_price = models.DecimalField(**PRICE, null=True, blank=True, help_text="Price of the latest trade.")
    opened_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["instrument__symbol"]
        constraints = [
            models.UniqueConstraint(
                fields=["portfolio", "instrument"], name="portfolios_position_unique_instrument"
            )
        ]

    def __str__(self) -> str:
        return f"{self.quantity} {self.instrument}"

    @property
    def average_cost(self) -> Decimal | None:
        if not self.quantity:
            return None
        return self.cost_basis / self.quantity


class Lot(TenantModel):
    """One FIFO lot: the units one transaction opened, and what is left of them and of their cost."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="+")
    # No index of its own: (position, closed_at, opened_at) leads with it.
    position = models.ForeignKey(Position, on_delete=models.CASCADE, related_name="lots", db_index=False)
    opening_transaction = models.ForeignKey(Transaction, on_delete=models.CASCADE, related_name="+")
    opened_at = models.DateTimeField()
    quantity = models.DecimalField(**QUANTITY, help_text="Units opened; negative for a short lot.")
    quantity_open = models.DecimalField(**QUANTITY)
    cost_open = models.DecimalField(
        **AMOUNT, help_text="Cost of the open units (negative: proceeds of a short)."
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["opened_at", "id"]
        indexes = [models.Index(fields=["position", "closed_at", "opened_at"])]


class CashBalance(TenantModel):
    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="cash_balances")
    currency = models.CharField(max_length=16)
    amount = models.DecimalField(**AMOUNT, default=ZERO)

    class Meta:
        ordering = ["currency"]
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "currency"], name="portfolios_cash_unique_currency"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} {self.currency}"


class Snapshot(TenantModel):
    """A portfolio's value at the end of one UTC day, in its base currency: one point of the equity curve."""

    portfolio = models.ForeignKey(Portfolio, on_delete=models.CASCADE, related_name="snapshots")
    date = models.DateField()
    taken_at = models.DateTimeField()
    value = models.DecimalField(**AMOUNT)
    cash_value = models.DecimalField(**AMOUNT, default=ZERO)
    positions_value = models.DecimalField(**AMOUNT, default=ZERO)
    unrealized_pnl = models.DecimalField(**AMOUNT, default=ZERO)
    realized_pnl = models.DecimalField(**AMOUNT, default=ZERO)
    net_flow = models.DecimalField(
        **AMOUNT, default=ZERO, help_text="Money added minus taken out since the previous snapshot."
    )
    flows = models.JSONField(
        default=dict,
        help_text="Money added minus taken out, per currency, over every transaction this value reflects.",
    )

    class Meta:
        ordering = ["date"]
        constraints = [
            models.UniqueConstraint(fields=["portfolio", "date"], name="portfolios_snapshot_one_per_day")
        ]

    def __str__(self) -> str:
        return f"{self.portfolio_id} {self.date} {self.value}"


class Watchlist(TenantModel):
    name = models.CharField(max_length=80)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="portfolios_watchlist_unique_name")
        ]

    def __str__(self) -> str:
        return self.name


class WatchlistItem(TenantModel):
    watchlist = models.ForeignKey(Watchlist, on_delete=models.CASCADE, related_name="items")
    instrument = models.ForeignKey("marketdata.Instrument", on_delete=models.CASCADE, related_name="+")
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["instrument__symbol"]
        constraints = [
            models.UniqueConstraint(
                fields=["watchlist", "instrument"], name="portfolios_watchlist_unique_item"
            )
        ]
