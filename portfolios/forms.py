from __future__ import annotations

from django import forms
from django.utils import timezone

from accounts.choices import BaseCurrency
from core.errors import DomainError
from core.inputs import validate_utc_datetime
from marketdata.selectors import instrument_get, instrument_list
from portfolios.choices import DECIMAL_PLACES, PortfolioKind, TransactionKind

MAX_DIGITS = 28


def _decimal_field(label: str, *, required: bool, help_text: str = "") -> forms.DecimalField:
    return forms.DecimalField(
        label=label,
        required=required,
        max_digits=MAX_DIGITS,
        decimal_places=DECIMAL_PLACES,
        min_value=0,
        help_text=help_text,
        widget=forms.TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"}),
    )


class PortfolioForm(forms.Form):
    name = forms.CharField(max_length=80, initial="Main")
    base_currency = forms.ChoiceField(
        label="Base currency",
        choices=BaseCurrency.choices,
        help_text="Totals, day change and performance are shown in this currency.",
    )
    kind = forms.ChoiceField(label="Kind", choices=PortfolioKind.choices[:2], initial=PortfolioKind.MANUAL)
    allow_short = forms.BooleanField(
        label="Allow short positions", required=False, help_text="Sells beyond what you hold open a short."
    )


class TransactionForm(forms.Form):
    kind = forms.ChoiceField(label="Type", choices=TransactionKind.choices)
    # A text input with a <datalist> of the listed symbols: quick to type on a phone, and cheap to render
    # for hundreds of instruments (a <select> renders one widget template per option).
    instrument = forms.CharField(
        label="Instrument",
        max_length=32,
        required=False,
        help_text="For buys, sells and coin transfers, e.g. BTC/USDT.",
        widget=forms.TextInput(
            attrs={"list": "instrument-options", "autocomplete": "off", "spellcheck": "false"}
        ),
    )
    currency = forms.CharField(
        label="Currency", max_length=16, required=False, help_text="For deposits, withdrawals and fees."
    )
    quantity = _decimal_field("Quantity", required=True, help_text="Units bought or sold, or the cash amount.")
    price = _decimal_field("Price", required=False, help_text="Per unit, in the instrument's quote currency.")
    fee = _decimal_field("Fee", required=False)
    fee_currency = forms.CharField(
        label="Fee currency", max_length=16, required=False, help_text="Empty: the quote currency."
    )
    executed_at = forms.DateTimeField(
        label="Date and time",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local", "step": "1"}, format="%Y-%m-%dT%H:%M:%S"),
        input_formats=[
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
            "%Y-%m-%d %H:%M:%S",
            "%Y-%m-%d %H:%M",
            "%Y-%m-%d",
        ],
        help_text="In your time zone.",
        validators=[validate_utc_datetime],
    )
    note = forms.CharField(label="Note", max_length=500, required=False)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial.setdefault("executed_at", timezone.localtime().replace(microsecond=0))
            self.initial.setdefault("kind", TransactionKind.BUY)

    def clean_instrument(self):
        symbol = self.cleaned_data["instrument"].strip()
        if not symbol:
            return None
        try:
            return instrument_get(symbol=symbol)
        except DomainError as exc:
            raise forms.ValidationError(str(exc)) from None

    @property
    def instrument_symbols(self) -> list[str]:
        return list(instrument_list(active=True).values_list("symbol", flat=True))


class ImportForm(forms.Form):
    file = forms.FileField(
        label="CSV file",
        help_text="The Nexus format or a Binance trade-history export (docs/portfolio-math.md, “Import”).",
    )


class WatchlistForm(forms.Form):
    name = forms.CharField(max_length=80)


class WatchlistAddForm(forms.Form):
    instrument = forms.ModelChoiceField(
        label="Instrument", queryset=instrument_list(active=None), to_field_name="symbol"
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["instrument"].queryset = instrument_list(active=None)
