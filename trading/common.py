"""Small helpers every part of trading uses: who acted (for audit rows) and the Decimal inputs of the forms.

Money helpers (`ZERO`, `plain`) are core/money.py's."""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal

from django.http import HttpRequest

from core.errors import DomainError


def request_actor(request: HttpRequest | None, user):
    """The signed-in user behind `request` (the audit row's actor), or None for work without a request."""
    if request is not None and getattr(request, "user", None) is not None and request.user.is_authenticated:
        return request.user
    return None


def user_id_of(user) -> int:
    return user if isinstance(user, int) else user.pk


def places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def quantize_down(value: Decimal, decimal_places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-decimal_places), rounding=ROUND_DOWN)


def decimal_input(value, *, field: str, label: str) -> Decimal | None:
    """A positive number from a form or API value; None when it is empty."""
    if value in (None, ""):
        return None
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        raise DomainError(f"{label} must be a number.", field=field) from None
    if not number.is_finite() or number <= 0:
        raise DomainError(f"{label} must be greater than zero.", field=field)
    return number


def positive_input(value, *, field: str, label: str) -> Decimal:
    number = decimal_input(value, field=field, label=label)
    if number is None:
        raise DomainError(f"Enter the {label.lower()}.", field=field)
    return number


PLAYBOOK_TAG_MAX = 40
_PLAYBOOK_TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]*")


def playbook_tag_clean(value) -> str:
    """A manual order's playbook tag: letters, digits, spaces, dots, dashes and underscores, at most 40; "" for none."""
    tag = " ".join(str(value or "").split())
    if not tag:
        return ""
    if len(tag) > PLAYBOOK_TAG_MAX or not _PLAYBOOK_TAG.fullmatch(tag):
        raise DomainError(
            "A playbook tag is up to 40 letters, digits, spaces, dots, dashes or underscores, starting with a "
            "letter or digit.", field="playbook_tag",
        )
    return tag
