"""core.money: how amounts are written for people and how typed numbers are taken (no database)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from core.errors import DomainError
from core.money import decimal_parse, plain


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("0.100000000000", "0.1"),
        ("1E+2", "100"),
        ("-0.000", "0"),
        ("-1.50", "-1.5"),
        # 32 significant digits, as an AMOUNT column holds: nothing is rounded.
        ("12345678901234567890.123456789012", "12345678901234567890.123456789012"),
    ],
)
def test_plain_writes_a_decimal_as_a_person_would(value, text):
    assert plain(Decimal(value)) == text


QUANTITY = {"max_digits": 28, "decimal_places": 12}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "Enter a number, e.g. 0.25."),
        ("abc", "Enter a number, e.g. 0.25."),
        ("Infinity", "Enter a number, e.g. 0.25."),
        ("NaN", "Enter a number, e.g. 0.25."),
        ("0", "Must be greater than zero."),
        ("1e999999999", "That number is too large."),
        ("99999999999999999", "That number is too large."),
        ("0.0000000000001", "Use at most 12 decimal places."),
    ],
)
def test_a_typed_number_the_column_cannot_hold_is_refused_with_a_message(value, message):
    with pytest.raises(DomainError) as error:
        decimal_parse(value, field="quantity", sign="positive", **QUANTITY)
    assert (error.value.field, str(error.value)) == ("quantity", message)


def test_a_labelled_value_is_named_in_its_messages_and_the_sign_is_the_callers_choice():
    with pytest.raises(DomainError, match="^A P&L level must be a number.$"):
        decimal_parse("ten", field="threshold", label="a P&L level", max_digits=24, decimal_places=8)
    with pytest.raises(DomainError, match="^Enter a price.$"):
        decimal_parse(None, field="threshold", label="a price", max_digits=24, decimal_places=8)
    with pytest.raises(DomainError, match="^A fee must not be negative.$"):
        decimal_parse("-1", field="fee", label="a fee", sign="zero_or_more", **QUANTITY)
    assert decimal_parse(" -5.250000000000000 ", field="threshold", max_digits=24, decimal_places=8) == Decimal(
        "-5.25"
    )


def test_a_float_is_a_programming_error_not_a_user_error():
    with pytest.raises(TypeError):
        decimal_parse(0.1, field="quantity", **QUANTITY)
