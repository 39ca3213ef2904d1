"""Forms for the trading pages. They collect input; the services decide (DomainError -> field error)."""

from __future__ import annotations

from django import forms

from core.inputs import validate_utc_datetime
from trading.choices import OrderSide, OrderSource, OrderStatus, OrderType, ReplaySource, Timeframe, Venue
from trading.common import PLAYBOOK_TAG_MAX
from trading.decisions.strategies import STRATEGIES

KEY_MAX_LENGTH = 1024


def _instrument_choices():
    from marketdata.selectors import instrument_list

    return [(i.symbol, i.symbol) for i in instrument_list()]


class ConnectionForm(forms.Form):
    label = forms.CharField(max_length=80, initial="My exchange")
    venue = forms.ChoiceField(choices=Venue.choices)
    sandbox = forms.BooleanField(required=False, label="Use the venue's testnet / sandbox")
    # Room for the longest credentials venues issue (Coinbase's secrets are PEM-encoded EC keys).
    api_key = forms.CharField(required=False, label="API key", max_length=KEY_MAX_LENGTH,
                              widget=forms.PasswordInput(render_value=False),
                              help_text="Stored encrypted; only its last four characters are shown again.")
    api_secret = forms.CharField(required=False, label="API secret", max_length=KEY_MAX_LENGTH,
                                 widget=forms.PasswordInput(render_value=False))
    passphrase = forms.CharField(required=False, label="Passphrase (OKX, KuCoin, Coinbase)",
                                 max_length=KEY_MAX_LENGTH, widget=forms.PasswordInput(render_value=False))
    confirmed_no_withdrawal = forms.BooleanField(
        required=False, label="I confirm this key cannot withdraw funds",
        help_text="Needed for venues that do not report a key's permissions.",
    )


class OrderTicketForm(forms.Form):
    connection = forms.ChoiceField(label="Exchange")
    portfolio = forms.ChoiceField()
    symbol = forms.ChoiceField(label="Pair")
    side = forms.ChoiceField(choices=OrderSide.choices, initial=OrderSide.BUY)
    type = forms.ChoiceField(choices=OrderType.choices, initial=OrderType.LIMIT, label="Order type")
    quantity = forms.DecimalField(min_value=0, max_digits=28, decimal_places=12)
    price = forms.DecimalField(required=False, min_value=0, max_digits=28, decimal_places=12, label="Limit price",
                               help_text="Limit and stop-limit orders.")
    stop_price = forms.DecimalField(required=False, min_value=0, max_digits=28, decimal_places=12,
                                    label="Trigger price", help_text="Stop and take-profit orders.")
    playbook_tag = forms.CharField(
        required=False, max_length=PLAYBOOK_TAG_MAX, label="Playbook tag (optional)",
        help_text="The setup this trade follows, e.g. \"breakout\"; the strategy tracker keeps statistics per tag.",
    )

    def __init__(self, *args, connections, portfolios, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["connection"].choices = [(c.pk, str(c)) for c in connections]
        self.fields["portfolio"].choices = [(p.pk, p.name) for p in portfolios]
        self.fields["symbol"].choices = _instrument_choices()
        self.fields["playbook_tag"].widget.attrs.update({"list": "playbook-tags", "autocomplete": "off"})
        for name in ("quantity", "price", "stop_price"):
            self.fields[name].widget.attrs.update({"inputmode": "decimal", "step": "any"})


class OrderHistoryFilterForm(forms.Form):
    status = forms.ChoiceField(required=False, choices=[("", "Any status"), *OrderStatus.choices])
    symbol = forms.ChoiceField(required=False)
    side = forms.ChoiceField(required=False, choices=[("", "Any side"), *OrderSide.choices])
    source = forms.ChoiceField(required=False, choices=[("", "Any source"), *OrderSource.choices])
    since = forms.DateField(required=False, label="From", widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, label="Until", widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["symbol"].choices = [("", "Any pair"), *_instrument_choices()]


class BotForm(forms.Form):
    name = forms.CharField(max_length=80)
    portfolio = forms.ChoiceField()
    connection = forms.ChoiceField(label="Exchange")
    symbol = forms.ChoiceField(label="Pair")
    strategy = forms.ChoiceField(choices=[(s.key, s.label) for s in STRATEGIES.values()])
    timeframe = forms.ChoiceField(choices=Timeframe.choices, initial=Timeframe.M1)
    fast = forms.IntegerField(required=False, label="SMA crossover: fast length", initial=9)
    slow = forms.IntegerField(required=False, label="SMA crossover: slow length", initial=21)
    period = forms.IntegerField(required=False, label="RSI: length", initial=14)
    oversold = forms.IntegerField(required=False, label="RSI: buy level", initial=30)
    overbought = forms.IntegerField(required=False, label="RSI: sell level", initial=70)
    every = forms.IntegerField(required=False, label="DCA: buy every N candles", initial=60)
    allocation = forms.DecimalField(min_value=0, max_digits=32, decimal_places=12, label="Per-trade allocation",
                                    help_text="Quote currency spent on each buy.")
    max_position = forms.DecimalField(min_value=0, max_digits=28, decimal_places=12, label="Maximum position",
                                      help_text="The most base units the bot may hold.")
    daily_loss_limit = forms.DecimalField(min_value=0, max_digits=32, decimal_places=12,
                                          help_text="Buys stop for the day once realized losses reach this.")

    def __init__(self, *args, connections, portfolios, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["connection"].choices = [(c.pk, str(c)) for c in connections]
        self.fields["portfolio"].choices = [(p.pk, p.name) for p in portfolios]
        self.fields["symbol"].choices = _instrument_choices()

    def strategy_params(self) -> dict:
        strategy = STRATEGIES[self.cleaned_data["strategy"]]
        return {
            spec.name: self.cleaned_data[spec.name]
            for spec in strategy.params
            if self.cleaned_data.get(spec.name) is not None
        }


class ReplayForm(forms.Form):
    """A simulation of a bot's settings over recorded candles (the strategy tracker's replay)."""

    name = forms.CharField(max_length=120, initial="My replay")
    symbol = forms.ChoiceField(label="Pair")
    strategy = forms.ChoiceField(choices=[(s.key, s.label) for s in STRATEGIES.values()])
    timeframe = forms.ChoiceField(choices=Timeframe.choices, initial=Timeframe.M1)
    fast = forms.IntegerField(required=False, label="SMA crossover: fast length", initial=9)
    slow = forms.IntegerField(required=False, label="SMA crossover: slow length", initial=21)
    period = forms.IntegerField(required=False, label="RSI: length", initial=14)
    oversold = forms.IntegerField(required=False, label="RSI: buy level", initial=30)
    overbought = forms.IntegerField(required=False, label="RSI: sell level", initial=70)
    every = forms.IntegerField(required=False, label="DCA: buy every N candles", initial=60)
    allocation = forms.DecimalField(min_value=0, max_digits=32, decimal_places=12, label="Per-trade allocation",
                                    initial=250, help_text="Quote currency spent on each simulated buy.")
    max_position = forms.DecimalField(min_value=0, max_digits=28, decimal_places=12, label="Maximum position",
                                      initial="0.1", help_text="The most base units the simulated bot may hold.")
    daily_loss_limit = forms.DecimalField(min_value=0, max_digits=32, decimal_places=12, initial=150,
                                          help_text="Simulated buys stop for the day once realized losses reach this.")
    source = forms.ChoiceField(choices=ReplaySource.choices, initial=ReplaySource.RECORDING, label="Candles",
                               widget=forms.RadioSelect)
    start = forms.DateTimeField(required=False, label="From (UTC, stored candles)", validators=[validate_utc_datetime],
                                widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))
    end = forms.DateTimeField(required=False, label="Until (UTC, stored candles)", validators=[validate_utc_datetime],
                              widget=forms.DateTimeInput(attrs={"type": "datetime-local"}))

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["symbol"].choices = _instrument_choices()

    def strategy_params(self) -> dict:
        strategy = STRATEGIES[self.cleaned_data["strategy"]]
        return {
            spec.name: self.cleaned_data[spec.name]
            for spec in strategy.params
            if self.cleaned_data.get(spec.name) is not None
        }


GATE_HORIZON_CHOICES = [("1h", "1 hour"), ("4h", "4 hours"), ("24h", "24 hours"), ("72h", "72 hours")]


class GateHorizonForm(forms.Form):
    horizon = forms.ChoiceField(choices=GATE_HORIZON_CHOICES, initial="24h", required=False,
                                label="Mark blocked trades after")
