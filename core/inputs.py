"""Checks for values that arrive from outside where no form or serializer field guards them: CSV cells,
socket messages and query strings, URL path segments.

Django's and DRF's CharFields already refuse NUL and lone surrogates and enforce `max_length`; these
checks are the same rules for the other ways text gets in, so that a bad value becomes a message the
sender can act on instead of a database error (PostgreSQL text cannot hold U+0000, and UTF-8 cannot
encode a lone surrogate) or a parser recursing until it crashes.
"""

from __future__ import annotations

import json
import re
from typing import Any

MAX_JSON_DEPTH = 32
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text_problem(value: str, *, max_length: int) -> str | None:
    """What is wrong with this text, as the end of a sentence naming it, or None when it can be stored."""
    if len(value) > max_length:
        return f"is longer than {max_length:,} characters"
    if _UNSTORABLE.search(value):
        return "contains a NUL or an invalid Unicode character"
    return None


def json_depth_problem(data: Any, *, max_depth: int = MAX_JSON_DEPTH) -> str | None:
    """A message when parsed JSON nests arrays and objects deeper than `max_depth`, else None."""
    containers = [data] if isinstance(data, dict | list) else []
    for _ in range(max_depth):
        containers = [
            child
            for container in containers
            for child in (container.values() if isinstance(container, dict) else container)
            if isinstance(child, dict | list)
        ]
        if not containers:
            return None
    return f"JSON nested deeper than {max_depth} levels."


def json_loads_bounded(text: str, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """`json.loads`, but deep nesting is a ValueError like any other malformed JSON, never a RecursionError."""
    try:
        data = json.loads(text)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {max_depth} levels.") from None
    problem = json_depth_problem(data, max_depth=max_depth)
    if problem:
        raise ValueError(problem)
    return data
