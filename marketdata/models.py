from decimal import Decimal

from django.db import models

PRICE = {"max_digits": 20, "decimal_places": 8}
VOLUME = {"max_digits": 28, "decimal_places": 8}


class Instrument(models.Model):
    """A tradable pair on a venue. Market data knows no users: nothing here is tenant data."""

    symbol = models.CharField(max_length=32, unique=True, help_text="Unified symbol, e.g. BTC/USDT.")
    base = models.CharField(max_length=16)
    quote = models.CharField(max_length=16)
    venue = models.CharField(max_length=32, default="binance")
    price_precision = models.PositiveSmallIntegerField(default=2, help_text="Decimal places of a price.")
    quantity_precision = models.PositiveSmallIntegerField(
        default=6, help_text="Decimal places of a quantity."
    )
    min_notional = models.DecimalField(max_digits=20, decimal_places=8, default=Decimal("10"))
    active = models.BooleanField(default=True)
    stale_after_seconds = models.PositiveIntegerField(
        default=30, help_text="Silence after which the quote is shown as stale."
    )
    reference_price = models.DecimalField(
        **PRICE,
        null=True,
        blank=True,
        help_text="Where the simulated source starts when there is no quote yet.",
    )

    class Meta:
        ordering = ["symbol"]

    def __str__(self) -> str:
        return self.symbol

    @property
    def slug(self) -> str:
        """URL and group-name form: BTC/USDT -> BTC-USDT."""
        return self.symbol.replace("/", "-")


class Quote(models.Model):
    """The latest quote per instrument. UNLOGGED (see migration 0002): rebuilt by the feed after a crash."""

    instrument = models.OneToOneField(
        Instrument, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    price = models.DecimalField(**PRICE)
    bid = models.DecimalField(**PRICE, null=True, blank=True)
    ask = models.DecimalField(**PRICE, null=True, blank=True)
    open_24h = models.DecimalField(**PRICE, null=True, blank=True, help_text="Price 24 hours before `at`.")
    high_24h = models.DecimalField(**PRICE, null=True, blank=True)
    low_24h = models.DecimalField(**PRICE, null=True, blank=True)
    volume_24h = models.DecimalField(**VOLUME, default=Decimal("0"))
    source = models.CharField(max_length=32, help_text="replay, simulated or ccxt:<exchange>.")
    at = models.DateTimeField(help_text="Market time of the last trade.")
    updated_at = models.DateTimeField(
        help_text="Wall-clock time the feed wrote it; staleness is measured from it."
    )

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.price}"


class Tick(models.Model):
    """Recent trades as received. UNLOGGED; trimmed by the `marketdata.tick_retention` beat task."""

    id = models.BigAutoField(primary_key=True)
    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="+")
    price = models.DecimalField(**PRICE)
    volume = models.DecimalField(**VOLUME, default=Decimal("0"))
    at = models.DateTimeField(help_text="Market time of the trade.")

    class Meta:
        indexes = [models.Index(fields=["instrument", "at"]), models.Index(fields=["at"])]

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.price} @ {self.at:%H:%M:%S}"


class Candle(models.Model):
    """One-minute OHLCV candle; 5m / 1h / 1d are derived from these (marketdata.selectors.candle_list)."""

    instrument = models.ForeignKey(Instrument, on_delete=models.CASCADE, related_name="+")
    open_time = models.DateTimeField()
    open = models.DecimalField(**PRICE)
    high = models.DecimalField(**PRICE)
    low = models.DecimalField(**PRICE)
    close = models.DecimalField(**PRICE)
    volume = models.DecimalField(**VOLUME, default=Decimal("0"))

    class Meta:
        ordering = ["instrument", "open_time"]
        constraints = [
            models.UniqueConstraint(
                fields=["instrument", "open_time"], name="marketdata_candle_one_per_minute"
            ),
            models.CheckConstraint(
                condition=models.Q(low__lte=models.F("open"))
                & models.Q(low__lte=models.F("close"))
                & models.Q(high__gte=models.F("open"))
                & models.Q(high__gte=models.F("close")),
                name="marketdata_candle_ohlc_consistent",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.instrument_id} {self.open_time:%Y-%m-%d %H:%M}"
