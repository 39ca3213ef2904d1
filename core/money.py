"""Money and quantities: always `Decimal`, never float. One home for the helpers every app needs.

- `ZERO`: `Decimal("0")`, the start of sums and the default of amounts.
- `plain(value) -> str`: a Decimal as a person writes it, for messages, CSV and JSON: no exponent and no
  trailing zeros (`Decimal("0.100000000000")` -> "0.1", `Decimal("1E+2")` -> "100", `-0` -> "0"). Exact:
  it never rounds, however many digits the value has.
- `decimal_parse(value, *, field, max_digits, decimal_places, label=None, sign="any") -> Decimal`: a number
  a user typed (a form, an API payload, a CSV cell), checked against the column it will be stored in.
  It raises `core.errors.DomainError(message, field=field)` for what the user can fix: empty, not a
  number, infinite or NaN, the wrong sign, more integer digits than `max_digits - decimal_places`, or
  more than `decimal_places` decimal places (trailing zeros aside; never rounded away). A float is a
  programming error (it is not exact), so it raises TypeError. The number comes back as given.

  `sign` is "any", "zero_or_more" or "positive". `label` names the value in the messages for pages
  that show them apart from the field ("a price" -> "Enter a price.", "A price must be a number.", "A price
  is too large."); without it the messages suit a message shown under the field itself ("Enter a
  number, e.g. 0.25.", "That number is too large.", "Must be greater than zero.").

      price = decimal_parse(text, field="price", max_digits=28, decimal_places=12, sign="positive")
"""

from __future__ import annotations

from decimal import Context, Decimal, InvalidOperation
from typing import Literal, TypedDict

from core.errors import DomainError

ZERO = Decimal("0")

Sign = Literal["any", "zero_or_more", "positive"]


class Precision(TypedDict):
    """A DecimalField's size, shared by the model field and the parser: `models.DecimalField(**PRICE)`,
    `decimal_parse(value, field=..., **PRICE)`."""

    max_digits: int
    decimal_places: int


def plain(value: Decimal) -> str:
    """A Decimal as a person writes it: no exponent, no trailing zeros."""
    # format(), not normalize(): normalize rounds to the context's 28 digits, and stored amounts have 32.
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def _messages(label: str | None) -> dict[str, str]:
    if label is None:
        return {
            "missing": "Enter a number, e.g. 0.25.",
            "invalid": "Enter a number, e.g. 0.25.",
            "positive": "Must be greater than zero.",
            "zero_or_more": "Must not be negative.",
            "too_large": "That number is too large.",
            "places": "Use at most {places} decimal places.",
        }
    named = label[0].upper() + label[1:]
    return {
        "missing": f"Enter {label}.",
        "invalid": f"{named} must be a number.",
        "positive": f"{named} must be greater than zero.",
        "zero_or_more": f"{named} must not be negative.",
        "too_large": f"{named} is too large.",
        "places": f"{named} can have at most {{places}} decimal places.",
    }


def decimal_parse(
    value: object,
    *,
    field: str,
    max_digits: int,
    decimal_places: int,
    label: str | None = None,
    sign: Sign = "any",
) -> Decimal:
    """A number a user typed, as a Decimal that fits a DecimalField(max_digits, decimal_places).

    See the module docstring for the checks and their messages."""
    if isinstance(value, float):
        raise TypeError("money and quantities are Decimal, never float")
    messages = _messages(label)
    if value is None or (isinstance(value, str) and not value.strip()):
        raise DomainError(messages["missing"], field=field)
    try:
        number = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise DomainError(messages["invalid"], field=field) from None
    if not number.is_finite():
        raise DomainError(messages["invalid"], field=field)
    if sign == "positive" and number <= 0:
        raise DomainError(messages["positive"], field=field)
    if sign == "zero_or_more" and number < 0:
        raise DomainError(messages["zero_or_more"], field=field)
    # copy_abs(), not abs(): abs() rounds to the context, and overflows at 1e999999.
    if number.copy_abs() >= Decimal(10) ** (max_digits - decimal_places):
        raise DomainError(messages["too_large"], field=field)
    # Within max_digits now, so quantizing with that precision cannot fail; trailing zeros are fine.
    if number != number.quantize(Decimal(1).scaleb(-decimal_places), context=Context(prec=max_digits)):
        raise DomainError(messages["places"].format(places=decimal_places), field=field)
    return number
