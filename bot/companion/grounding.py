"""Grounding: a reply may state only numbers that came from the tool results of the turn that produced it.

Every numeric token of the reply is normalised and looked up in the numbers of that turn's tool outputs
(and of the member's own question). The rules, chosen so that a number is "the same" exactly when a
trader would read it as the same figure:

- A numeric token is a run of digits with optional thousands commas and one decimal part: "67,412.35",
  "0.5", "14". A sign (+, -, the typographic minus "−") and a trailing percent sign belong to the figure
  but are dropped before comparing: "−1.25%" in a reply matches "-1.25" in a tool result, and "down 3.10%"
  matches "-3.1". Direction words are the model's job; the magnitude is what is checked.
- Thousands commas and trailing decimal zeros are ignored: "70,000.00" = "70000" = "70000.0".
- Dates and times are split at their separators ("2026-11-30 14:05" gives 2026, 11, 30, 14, 5), on
  both sides, so a timestamp copied from a tool result matches itself.
- Numbers inside words are not figures: "BTC/USDT", "1D", "ETH2", "gpt-4o", "#12" are skipped, as are
  list markers at the start of a line ("1. ", "2) ").
- Numbers the member wrote in the question are allowed ("alert me when BTC goes above 70,000": the
  level is the member's, echoed back). Nothing else is: not small integers, not rounded figures ("about
  67k" for 67,412.35 is refused and regenerated with the exact figure).

An ungrounded reply is regenerated once with a system note naming the ungrounded numbers; if that reply
is still ungrounded it is replaced by REFUSAL, which states no number.
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

REFUSAL = (
    "I could not check every figure in my answer against your data, so I will not state it. "
    "Ask me again more specifically (for example about one position, pair or period) and I will "
    "answer from your account's numbers."
)

# A figure: optional sign, digits with optional thousands groups, optional decimals, optional percent.
# Not preceded by a letter, digit, slash or '#', nor followed by a letter or digit (so "1D", "ETH2",
# "BTC/USDT", "gpt-4o" and "#12" are not figures).
_NUMBER = re.compile(
    r"(?<![\w/#.])(?P<sign>[-+−]?)(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)(?P<pct>%?)(?![\w])"
)
_LIST_MARKER = re.compile(r"^\s*\d{1,2}[.)]\s", re.MULTILINE)


def normalise(token: str) -> str | None:
    """ "−70,000.50%" -> "70000.5"; None for something that is not a number."""
    text = token.strip().lstrip("+-−").rstrip("%").replace(",", "")
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    if value == value.to_integral_value():
        return str(value.quantize(Decimal(1)))
    return format(value.normalize(), "f")


def numbers_in(text: str, *, skip_list_markers: bool = False) -> list[str]:
    """The normalised figures in `text`, in order (duplicates kept)."""
    if skip_list_markers:
        text = _LIST_MARKER.sub(" ", text)
    # Dates and times: split "2026-11-30" and "14:05" into their parts (a dash between digits is not a sign).
    text = re.sub(r"(?<=\d)[-:T](?=\d)", " ", text)
    found = []
    for match in _NUMBER.finditer(text):
        value = normalise(match.group("num"))
        if value is not None:
            found.append(value)
    return found


def _strings(value: Any) -> Iterable[str]:
    """Every scalar in a tool result, as text (keys too: a result keyed by period "1W" names no figure)."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)
    elif value is None or isinstance(value, bool):
        return
    else:
        yield str(value)


def grounded_numbers(*, tool_outputs: Iterable[Any], question: str = "") -> set[str]:
    """The normalised figures a reply may state: those of the tool outputs, and of the question."""
    allowed: set[str] = set()
    for output in tool_outputs:
        if isinstance(output, str):
            with contextlib.suppress(ValueError):
                output = json.loads(output)
        for text in _strings(output):
            allowed.update(numbers_in(text))
    allowed.update(numbers_in(question))
    return allowed


def ungrounded(text: str, *, allowed: set[str]) -> list[str]:
    """The figures of `text` that `allowed` does not hold, each once, in order of appearance."""
    missing: list[str] = []
    for value in numbers_in(text, skip_list_markers=True):
        if value not in allowed and value not in missing:
            missing.append(value)
    return missing


def regenerate_note(missing: list[str]) -> str:
    return (
        "Your previous answer stated numbers that appear in none of this turn's tool results: "
        + ", ".join(missing)
        + ". Answer again using only figures exactly as they appear in the tool results (you may call "
        "tools to look them up), or say plainly that you do not have that figure."
    )
