from django import template

from core.money import plain as money_plain

register = template.Library()


@register.filter
def get_item(mapping, key):
    """`{{ mapping|get_item:key }}`: a dict lookup with a variable key."""
    return mapping.get(key) if mapping else None


@register.filter
def plain(value):
    """A Decimal without trailing zeros or exponent: 0.100000000000 -> 0.1, 1E+1 -> 10; None -> an em dash."""
    if value is None or value == "":
        return "—"
    from decimal import Decimal, InvalidOperation

    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return value
    return money_plain(number)


def _fixed(value, places: int) -> str:
    from decimal import ROUND_HALF_EVEN, Decimal

    return f"{Decimal(value).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN):,}"


@register.filter
def num(value, places=2):
    """A Decimal to `places` decimals (half to even) with thousands separators; None -> an em dash."""
    if value is None or value == "":
        return "—"
    return _fixed(value, int(places))


@register.filter
def pct(value, places=2):
    """A fraction as a percentage: 0.6667 -> 66.67 %; None -> an em dash."""
    if value is None or value == "":
        return "—"
    return f"{_fixed(value * 100, int(places))} %"


@register.filter
def signed_class(value):
    """"up" / "down" for a positive / negative figure (colour), "" otherwise."""
    if value is None or value == "":
        return ""
    return "up" if value > 0 else "down" if value < 0 else ""
