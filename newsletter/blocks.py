"""Data blocks: lines such as `[[regime BTC/USDT]]` in an issue's Markdown, expanded from stored data.

The syntax (docs/newsletter.md): a block is a line of its own, `[[name arg arg ...]]`, outside fenced code.

    [[market-summary]]                 every listed pair: price, 24 h change, regime
    [[market-summary BTC/USDT ETH/USDT]]
    [[regime BTC/USDT]]                the regime gatekeeper's latest reading of a pair
    [[movers 7d 5]]                    the pairs that moved most over 24h, 7d or 30d (up to 20)
    [[chart BTC/USDT 1h 48]]           a candlestick chart of the last 48 one-hour candles (1m, 5m, 1h, 1d)
    [[research-note 42]]               a published research note (research.selectors.note_published_get)
    [[research-notes BTC/USDT 3]]      links to the newest published notes (on a pair, when named)

Every figure comes from the companion's read tools (bot.companion.tools), run as the issue's author: the
same selectors and the same formatting the pages and the companion use. `block_parse` checks a block's
arguments when an issue is saved; `block_data` looks the figures up when the issue is previewed or sent.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from bot.companion.tools import tool_run
from bot.discord.chart import candles_png
from core.errors import DomainError
from marketdata.selectors import TIMEFRAMES, candle_list, canonical_symbol, instrument_get, instrument_list
from research.selectors import PublishedResearch, note_published_get, note_published_list

BLOCK_LINE = re.compile(r"^\[\[\s*(?P<name>[a-z][a-z-]*)(?P<args>[^\]]*)\]\]\s*$")
FENCE = re.compile(r"^\s{0,3}(```|~~~)")
PERIODS = {"24h": 24, "7d": 24 * 7, "30d": 24 * 30}
MOVERS_MAX = 20
CHART_BARS_MAX = 500
SUMMARY_PAIRS_MAX = 30
NOTES_MAX = 10


@dataclass(frozen=True)
class Block:
    name: str
    params: dict[str, Any]
    line: int
    source: str


@dataclass
class Segment:
    """Markdown text, or one block."""

    text: str = ""
    block: Block | None = None


def _error(line: int, message: str) -> DomainError:
    return DomainError(f"Line {line}: {message}", field="body")


def _pair(line: int, value: str) -> str:
    try:
        return instrument_get(symbol=canonical_symbol(value)).symbol
    except DomainError as exc:
        raise _error(line, str(exc)) from None


def _count(line: int, value: str, *, name: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise _error(line, f"{name} must be a whole number, not {value!r}.") from None
    if not low <= number <= high:
        raise _error(line, f"{name} must be between {low} and {high}.")
    return number


def _market_summary(line: int, args: list[str]) -> dict[str, Any]:
    if len(args) > SUMMARY_PAIRS_MAX:
        raise _error(line, f"A market summary lists at most {SUMMARY_PAIRS_MAX} pairs.")
    return {"pairs": [_pair(line, a) for a in args]}


def _regime(line: int, args: list[str]) -> dict[str, Any]:
    if len(args) != 1:
        raise _error(line, "Write [[regime PAIR]], e.g. [[regime BTC/USDT]].")
    return {"pair": _pair(line, args[0])}


def _movers(line: int, args: list[str]) -> dict[str, Any]:
    if len(args) > 2:
        raise _error(line, "Write [[movers PERIOD COUNT]], e.g. [[movers 7d 5]].")
    period = (args[0] if args else "7d").lower()
    if period not in PERIODS:
        raise _error(line, f"The period must be one of {', '.join(PERIODS)}.")
    count = _count(line, args[1], name="The count", low=1, high=MOVERS_MAX) if len(args) > 1 else 5
    return {"period": period, "count": count}


def _chart(line: int, args: list[str]) -> dict[str, Any]:
    if not 1 <= len(args) <= 3:
        raise _error(line, "Write [[chart PAIR INTERVAL BARS]], e.g. [[chart BTC/USDT 1h 48]].")
    interval = args[1] if len(args) > 1 else "1h"
    if interval not in TIMEFRAMES:
        raise _error(line, f"The interval must be one of {', '.join(TIMEFRAMES)}.")
    bars = _count(line, args[2], name="The number of bars", low=2, high=CHART_BARS_MAX) if len(args) > 2 else 48
    return {"pair": _pair(line, args[0]), "interval": interval, "bars": bars}


def _research_note(line: int, args: list[str]) -> dict[str, Any]:
    if len(args) != 1:
        raise _error(line, "Write [[research-note ID]], e.g. [[research-note 42]].")
    note_id = _count(line, args[0], name="The note id", low=1, high=2**63 - 1)
    try:
        note_published_get(note_id=note_id)
    except DomainError:
        raise _error(line, f"Research note {note_id} is not published.") from None
    return {"note_id": note_id}


def _research_notes(line: int, args: list[str]) -> dict[str, Any]:
    if len(args) > 2:
        raise _error(line, "Write [[research-notes PAIR COUNT]], e.g. [[research-notes BTC/USDT 3]].")
    symbol = None
    if args and not args[0].isdigit():
        symbol = _pair(line, args.pop(0))
    count = _count(line, args[0], name="The count", low=1, high=NOTES_MAX) if args else 3
    return {"symbol": symbol, "count": count}


PARSERS: dict[str, Callable[[int, list[str]], dict[str, Any]]] = {
    "market-summary": _market_summary,
    "regime": _regime,
    "movers": _movers,
    "chart": _chart,
    "research-note": _research_note,
    "research-notes": _research_notes,
}


def body_split(body: str) -> list[Segment]:
    """The body as Markdown segments and blocks; an unknown block or bad arguments raise DomainError."""
    segments: list[Segment] = []
    text: list[str] = []
    fenced = False
    for number, line in enumerate((body or "").splitlines(), start=1):
        if FENCE.match(line):
            fenced = not fenced
        match = None if fenced else BLOCK_LINE.match(line.strip())
        if match is None:
            text.append(line)
            continue
        name = match.group("name")
        parser = PARSERS.get(name)
        if parser is None:
            raise _error(number, f"There is no data block [[{name}]]. Blocks: {', '.join(sorted(PARSERS))}.")
        if text:
            segments.append(Segment(text="\n".join(text)))
            text = []
        params = parser(number, match.group("args").split())
        segments.append(Segment(block=Block(name=name, params=params, line=number, source=line.strip())))
    if text:
        segments.append(Segment(text="\n".join(text)))
    return segments


def _number(text: Any) -> Decimal | None:
    """ "−1.25%" -> Decimal("-1.25") (the tools format signed percents with a typographic minus)."""
    if text in (None, ""):
        return None
    try:
        return Decimal(str(text).replace("−", "-").replace("%", "").replace(",", "").replace("+", ""))
    except InvalidOperation:
        return None


# --- the figures ---------------------------------------------------------------------------------------


def market_summary(*, user, pairs: list[str] | None = None) -> dict[str, Any]:
    """Price, 24-hour change and regime of each pair (every listed pair when none are named)."""
    symbols = pairs or [i.symbol for i in instrument_list()][:SUMMARY_PAIRS_MAX]
    rows = []
    for symbol in symbols:
        price = tool_run(user=user, name="price", arguments={"pair": symbol})
        regime = tool_run(user=user, name="regime", arguments={"pair": symbol})
        rows.append(
            {
                "pair": symbol,
                "price": price.get("price"),
                "currency": price.get("currency"),
                "change_24h_pct": price.get("change_24h_pct"),
                "regime": regime.get("regime"),
            }
        )
    return {"pairs": rows}


def regime(*, user, pair: str) -> dict[str, Any]:
    return tool_run(user=user, name="regime", arguments={"pair": pair})


def movers(*, user, period: str = "7d", count: int = 5) -> dict[str, Any]:
    """The pairs whose price moved most (either way) over the period, from their one-hour candles."""
    hours = PERIODS[period]
    rows = []
    for instrument in instrument_list():
        summary = tool_run(
            user=user,
            name="candles_summary",
            arguments={"pair": instrument.symbol, "interval": "1h", "lookback": hours},
        )
        change = _number(summary.get("change_pct"))
        if change is None:
            continue
        rows.append(
            {
                "pair": summary["pair"],
                "change_pct": summary["change_pct"],
                "open": summary["open"],
                "close": summary["close"],
                "direction": summary["direction"],
                "_sort": abs(change),
            }
        )
    rows.sort(key=lambda row: (-row["_sort"], row["pair"]))
    for row in rows:
        del row["_sort"]
    return {"period": period, "movers": rows[:count]}


def chart(*, user, pair: str, interval: str, bars: int) -> dict[str, Any]:
    summary = tool_run(
        user=user, name="candles_summary", arguments={"pair": pair, "interval": interval, "lookback": bars}
    )
    candles = candle_list(symbol=pair, timeframe=interval, limit=bars)
    png = candles_png(candles, title=f"{pair} · {interval}", timeframe=interval) if candles else b""
    return {"summary": summary, "png": base64.b64encode(png).decode() if png else ""}


def _note(note: PublishedResearch) -> dict[str, Any]:
    from core.notifications import absolute_url

    return {
        "note_id": note.note_id,
        "title": note.title,
        "author_name": note.author_name,
        "audience": note.audience,
        "published_at": f"{note.published_at:%Y-%m-%d}",
        "symbols": list(note.symbols),
        "direction": note.direction,
        "thesis_symbol": note.thesis_symbol,
        "entry": str(note.entry) if note.entry is not None else None,
        "target": str(note.target) if note.target is not None else None,
        "stop": str(note.stop) if note.stop is not None else None,
        "url": absolute_url(note.url),
        "body_html": str(note.body_html),
    }


def research_note(*, user, note_id: int) -> dict[str, Any]:
    """A published note with its rendered (sanitised) HTML; {"error": ...} when it was withdrawn since."""
    try:
        return {"note": _note(note_published_get(note_id=note_id))}
    except DomainError:
        return {"error": f"Research note {note_id} is no longer published."}


def research_notes(*, user, symbol: str | None = None, count: int = 3) -> dict[str, Any]:
    notes = note_published_list(symbol=symbol, limit=count)
    return {"symbol": symbol, "notes": [{k: v for k, v in _note(n).items() if k != "body_html"} for n in notes]}


DATA: dict[str, Callable[..., dict[str, Any]]] = {
    "market-summary": market_summary,
    "regime": regime,
    "movers": movers,
    "chart": chart,
    "research-note": research_note,
    "research-notes": research_notes,
}


def block_data(*, user, block: Block) -> dict[str, Any]:
    return DATA[block.name](user=user, **block.params)


@dataclass
class Images:
    """The charts of one rendering: as data: URLs for the web, or as Content-IDs for an email."""

    email: bool
    by_cid: dict[str, str] = field(default_factory=dict)

    def src(self, png_base64: str) -> str:
        if not self.email:
            return f"data:image/png;base64,{png_base64}"
        cid = f"chart{len(self.by_cid) + 1}@nexus"
        self.by_cid[cid] = png_base64
        return f"cid:{cid}"
