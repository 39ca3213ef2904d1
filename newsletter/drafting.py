"""The companion drafts an issue from the week's data, grounded like the companion's answers.

The figures are looked up first, through the same read tools the companion uses (newsletter.blocks:
market summary with each pair's regime, the week's movers). Then:

- with a language model (OPENAI_API_KEY set, bot.companion.providers), the model writes Markdown from
  those tool results; the prose is checked by bot.companion.grounding: a number that is in no tool result
  gets the draft regenerated once, then the model's draft is dropped for the offline one;
- offline (no model), the draft is composed from the tool results themselves, every figure copied from
  them verbatim.

Data block lines ([[market-summary]] ...) are not checked: they are expanded from stored data when the
issue is previewed or sent. Drafting counts as one AI query (billing).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import structlog

from billing.choices import Feature
from billing.services import entitlement_consume
from bot.companion import grounding
from bot.companion.providers import ProviderError, provider_get
from newsletter.blocks import BLOCK_LINE, market_summary, movers

logger = structlog.get_logger(__name__)

DRAFT_PROMPT = (
    "You write the weekly newsletter of Nexus, a crypto trading platform, in Markdown. Use only the figures "
    "in the tool results, exactly as written there; never compute, round or estimate new ones. You may "
    "place these data blocks on lines of their own, they are filled from live data when sent: "
    "[[market-summary]], [[movers 7d 5]], [[regime PAIR]], [[chart PAIR 1h 168]]. Start with a level-two "
    "heading per section, keep it under 300 words, and end with 'Not investment advice.'"
)
TITLE = "Nexus weekly: the markets in review"


@dataclass(frozen=True)
class Draft:
    title: str
    body: str
    source: str  # "offline" | "model" | "offline (the model's draft was not grounded)" ...
    tool_results: list[dict[str, Any]]


def week_data(*, user) -> list[dict[str, Any]]:
    """The tool results a draft is written from."""
    return [
        {"tool": "market_summary", "arguments": {}, "result": market_summary(user=user)},
        {"tool": "movers", "arguments": {"period": "7d", "count": 5}, "result": movers(user=user, period="7d", count=5)},
    ]


def _offline_body(results: list[dict[str, Any]]) -> str:
    summary = results[0]["result"]["pairs"]
    week = results[1]["result"]["movers"]
    lines = [
        "Here is the week on Nexus, written from the market data Nexus stores.",
        "",
        "## Market summary",
        "",
        "[[market-summary]]",
        "",
        "## The week's movers",
        "",
    ]
    if week:
        for row in week[:3]:
            lines.append(
                f"- **{row['pair']}** moved {row['change_pct']} over the week, from {row['open']} to {row['close']}."
            )
        lines += ["", "[[movers 7d 5]]", ""]
    else:
        lines += ["No candles were stored this week, so there are no movers to report.", ""]
    classified = [row for row in summary if row["regime"]]
    lines += ["## Regimes", ""]
    if classified:
        lines += [f"- {row['pair']}: {row['regime']}" for row in classified]
    else:
        lines.append("The regime gatekeeper has not classified any pair yet.")
    if week:
        lines += ["", f"## {week[0]['pair']} this week", "", f"[[chart {week[0]['pair']} 1h 168]]"]
    lines += ["", "Not investment advice."]
    return "\n".join(lines)


def _prose(body: str) -> str:
    """The body without data block lines (those are filled from data, not written by the model)."""
    return "\n".join(line for line in body.splitlines() if not BLOCK_LINE.match(line.strip()))


def _model_body(*, provider, results: list[dict[str, Any]]) -> str | None:
    """The model's draft if it is grounded (after at most one regeneration), else None."""
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": DRAFT_PROMPT},
        {"role": "user", "content": "Tool results:\n" + json.dumps(results, default=str)},
    ]
    allowed = grounding.grounded_numbers(tool_outputs=[r["result"] for r in results])
    for attempt in (1, 2):
        turn = provider.complete(messages=messages, tools=[])
        text = (turn.text or "").strip()
        missing = grounding.ungrounded(_prose(text), allowed=allowed)
        if text and not missing:
            return text
        logger.info("newsletter.draft_ungrounded", numbers=missing, attempt=attempt)
        messages += [
            {"role": "assistant", "content": text},
            {"role": "system", "content": grounding.regenerate_note(missing) if missing else "Write the draft."},
        ]
    return None


def issue_draft_compose(*, user) -> Draft:
    """A grounded draft of this week's issue, as `user` (the author). Counts one AI query."""
    entitlement_consume(user=user, feature=Feature.AI_QUERIES, idempotency_key=f"newsletter-draft:{uuid.uuid4()}")
    results = week_data(user=user)
    provider = provider_get()
    if getattr(provider, "local", False):
        return Draft(title=TITLE, body=_offline_body(results), source="offline", tool_results=results)
    try:
        body = _model_body(provider=provider, results=results)
    except ProviderError as exc:
        logger.warning("newsletter.draft_provider_error", error=str(exc))
        return Draft(
            title=TITLE, body=_offline_body(results), source="offline (the model was unreachable)",
            tool_results=results,
        )
    if body is None:
        return Draft(
            title=TITLE, body=_offline_body(results), source="offline (the model's draft was not grounded)",
            tool_results=results,
        )
    return Draft(title=TITLE, body=body, source="model", tool_results=results)
