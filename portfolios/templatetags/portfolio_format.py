"""Formatting of Decimal money, quantities and percentages for the portfolio pages (never via float)."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from django import template

from core.money import plain
from portfolios.choices import USD_EQUIVALENTS

register = template.Library()

FIAT_LIKE = USD_EQUIVALENTS | {"EUR", "GBP", "CHF", "JPY", "AUD", "CAD"}
DASH = "—"


def places_for(currency: str | None) -> int:
    return 2 if (currency or "").upper() in FIAT_LIKE else 8


def _grouped(value: Decimal, places: int) -> str:
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)
    return f"{rounded:,.{places}f}"


@register.filter
def money(value, currency: str = "") -> str:
    """12345.678 USDT -> "12,345.68"; BTC amounts keep 8 places."""
    if value is None or value == "":
        return DASH
    return _grouped(Decimal(value), places_for(currency))


@register.filter
def signed_money(value, currency: str = "") -> str:
    if value is None or value == "":
        return DASH
    value = Decimal(value)
    text = _grouped(abs(value), places_for(currency))
    if text.strip("0.,") == "":
        return text
    return ("+" if value > 0 else "−") + text


@register.filter
def price(value, places=None) -> str:
    """A price with the instrument's precision (or as stored, trailing zeros dropped)."""
    if value is None or value == "":
        return DASH
    value = Decimal(value)
    if places not in (None, ""):
        return _grouped(value, int(places))
    return quantity(value)


@register.filter
def quantity(value) -> str:
    """Trailing zeros dropped, thousands grouped: 1234.50000000 -> "1,234.5"."""
    if value is None or value == "":
        return DASH
    whole, _, fraction = plain(Decimal(value)).partition(".")
    sign = "-" if whole.startswith("-") else ""
    whole = f"{int(whole.lstrip('-') or 0):,}"
    return f"{sign}{whole}.{fraction}" if fraction else f"{sign}{whole}"


@register.filter
def pct(value) -> str:
    if value is None or value == "":
        return DASH
    value = Decimal(value)
    return f"{'+' if value > 0 else ('−' if value < 0 else '')}{abs(value):,.2f}%"


@register.filter
def updown(value) -> str:
    """The CSS class for a signed figure."""
    if value is None or value == "":
        return ""
    value = Decimal(value)
    return "up" if value > 0 else ("down" if value < 0 else "")


@register.filter
def bar_width(value) -> str:
    """A percentage clamped to 0..100 for an SVG bar width attribute (no inline styles under our CSP)."""
    if value is None or value == "":
        return "0"
    value = min(max(Decimal(value), Decimal(0)), Decimal(100))
    return f"{value:.2f}"


@register.inclusion_tag("portfolios/partials/position_actions.html")
def position_action_links(symbol: str, portfolio_id: int) -> dict:
    """The links other apps register for a position row (portfolios.actions)."""
    from portfolios.actions import position_actions

    return {"symbol": symbol, "actions": position_actions(symbol=symbol, portfolio_id=portfolio_id)}
