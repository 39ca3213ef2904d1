"""Checks for values that arrive from outside where no form or serializer field guards them: CSV cells,
socket messages and query strings, URL path segments, dates with far-off UTC offsets.

Django's and DRF's CharFields already refuse NUL and lone surrogates and enforce `max_length`; these
checks are the same rules for the other ways text gets in, so that a bad value becomes a message the
sender can act on instead of a database error (PostgreSQL text cannot hold U+0000, and UTF-8 cannot
encode a lone surrogate) or a parser recursing until it crashes.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError

MAX_JSON_DEPTH = 32
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def text_problem(value: str, *, max_length: int) -> str | None:
    """What is wrong with this text, as the end of a sentence naming it, or None when it can be stored."""
    if len(value) > max_length:
        return f"is longer than {max_length:,} characters"
    if _UNSTORABLE.search(value):
        return "contains a NUL or an invalid Unicode character"
    return None


def validate_utc_datetime(value: datetime) -> None:
    """Form validator: the time must fall within years 1 to 9999 in UTC. 0001-01-01T00:00+14:00 does not,
    and PostgreSQL would store it and then fail to read it back."""
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise ValidationError("Enter a date between the years 1 and 9999.", code="out_of_range") from None


def json_problem(data: Any, *, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """Why parsed JSON cannot be taken, or None: arrays and objects nested deeper than `max_depth`, or a
    string holding a lone surrogate (a "\\ud800" escape is valid JSON but not Unicode: nothing can
    store it, and echoing it in an error message would fail too)."""
    values = [data]
    for depth in range(max_depth + 1):
        children = []
        for value in values:
            if isinstance(value, str) and _SURROGATE.search(value):
                return "a string holds a lone surrogate (such as \\ud800), which is not Unicode text."
            if isinstance(value, dict | list):
                if depth == max_depth:
                    return f"nested deeper than {max_depth} levels."
                children.extend([*value, *value.values()] if isinstance(value, dict) else value)
        values = children
    return None


def json_loads_bounded(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads`, but what `json_problem` finds (or a RecursionError) is a ValueError like other bad JSON."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError(f"nested deeper than {max_depth} levels.") from None
    problem = json_problem(data, max_depth=max_depth)
    if problem:
        raise ValueError(problem)
    return data
