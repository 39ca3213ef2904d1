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
