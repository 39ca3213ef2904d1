from decimal import Decimal

from django.db import models


class Instrument(models.Model):
    """A tradable pair on a venue. Market data knows no users: nothing here is tenant data."""

    symbol = models.CharField(max_length=32, unique=True, help_text="Unified symbol, e.g. BTC/USDT.")
    base = models.CharField(max_length=16)
    quote = models.CharField(max_length=16)
    venue = models.CharField(max_length=32, default="binance")
    price_precision = models.PositiveSmallIntegerField(default=2, help_text="Decimal places of a price.")
    quantity_precision = models.PositiveSmallIntegerField(default=6, help_text="Decimal places of a quantity.")
    min_notional = models.DecimalField(max_digits=20, decimal_places=8, default=Decimal("10"))
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return self.symbol

    @property
    def slug(self) -> str:
        """URL and group-name form: BTC/USDT -> BTC-USDT."""
        return self.symbol.replace("/", "-")
