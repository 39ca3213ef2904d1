"""An issue's Markdown and data blocks as HTML (web archive, preview) and as an email (inlined CSS, text part).

Markdown is CommonMark (markdown-it-py) with tables and strikethrough; raw HTML in the Markdown is shown
as text, and links other than http(s)/mailto are not links, so an author cannot inject markup. Blocks are
rendered by the templates in templates/newsletter/blocks/. The email document's CSS is inlined once per
issue with css-inline; each recipient's copy differs only by the unsubscribe link, substituted for
UNSUBSCRIBE_PLACEHOLDER.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import css_inline
from django.conf import settings
from django.template.loader import render_to_string
from django.utils.safestring import mark_safe
from markdown_it import MarkdownIt

from newsletter.blocks import Block, Images, block_data, body_split

UNSUBSCRIBE_PLACEHOLDER = "https://unsubscribe.invalid/NEXUS-UNSUBSCRIBE-LINK"

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(["table", "strikethrough"])


@dataclass
class RenderedBody:
    html: str
    text: str
    images: dict[str, str] = field(default_factory=dict)  # Content-ID -> base64 PNG (email only)
    data: list[dict[str, Any]] = field(default_factory=list)  # each block's figures, in order


def _block_text(block: Block, data: dict[str, Any]) -> str:
    if block.name == "market-summary":
        lines = ["Market summary"]
        for row in data["pairs"]:
            lines.append(
                f"- {row['pair']}: {row['price'] or 'no price yet'} {row['currency'] or ''}".rstrip()
                + (f", 24 h {row['change_24h_pct']}" if row["change_24h_pct"] else "")
                + (f", {row['regime']}" if row["regime"] else "")
            )
        return "\n".join(lines)
    if block.name == "regime":
        if data.get("error"):
            return f"Regime: {data['error']}"
        if not data.get("regime"):
            return f"{data['pair']} regime: not classified yet."
        return (
            f"{data['pair']} regime: {data['regime']} ({data['timeframe']}; SMA slope {data['sma_slope_pct']},"
            f" ADX {data['adx']}; as of {data['as_of']})"
        )
    if block.name == "movers":
        lines = [f"Top movers ({data['period']})"]
        lines += [f"- {r['pair']}: {r['change_pct']} ({r['open']} to {r['close']})" for r in data["movers"]]
        if not data["movers"]:
            lines.append("- No candles stored for this period yet.")
        return "\n".join(lines)
    if block.name == "chart":
        s = data["summary"]
        if not data["png"]:
            return f"{s['pair']} chart: no candles stored yet."
        return (
            f"{s['pair']} {s['interval']} chart, {s['bars']} bars from {s['from']} to {s['to']}: "
            f"open {s['open']}, high {s['high']}, low {s['low']}, close {s['close']} ({s['change_pct']})"
        )
    if block.name == "research-note":
        if data.get("error"):
            return data["error"]
        note = data["note"]
        return f"Research note: {note['title']} by {note['author_name']} ({note['published_at']}): {note['url']}"
    if block.name == "research-notes":
        lines = ["Research notes" + (f" on {data['symbol']}" if data["symbol"] else "")]
        lines += [f"- {n['title']} by {n['author_name']}: {n['url']}" for n in data["notes"]]
        if not data["notes"]:
            lines.append("- None published yet.")
        return "\n".join(lines)
    raise ValueError(block.name)


# A research note's body appears in emails to readers its audience allows, never in the public archive:
# the block's template marks the full body and the teaser that replaces it on the web.
_NOTE_BODY = re.compile(r"<!--nl-note-full-->(.*?)<!--nl-note-teaser-->(.*?)<!--/nl-note-->", re.S)


def html_for_email(html: str) -> str:
    return _NOTE_BODY.sub(lambda m: m.group(1), html)


def html_for_web(html: str) -> str:
    return _NOTE_BODY.sub(lambda m: m.group(2), html)


def body_render(*, user, body: str, email: bool, paying_readers: bool = False) -> RenderedBody:
    """Expand `body` as `user` (the author): blocks looked up now. DomainError for a bad block.

    `paying_readers`: every recipient is on a paid plan, so notes published for paying members are shown
    in full (notes for every member always are). The HTML keeps both a note's body and its teaser, for
    `html_for_email` / `html_for_web` to choose."""
    images = Images(email=email)
    html: list[str] = []
    text: list[str] = []
    figures: list[dict[str, Any]] = []
    for segment in body_split(body):
        if segment.block is None:
            html.append(_markdown.render(segment.text))
            text.append(segment.text.strip())
            continue
        block = segment.block
        data = block_data(user=user, block=block)
        figures.append({"block": block.source, "data": {k: v for k, v in data.items() if k != "png"}})
        context = {"data": data, "block": block}
        if block.name == "chart" and data["png"]:
            context["src"] = images.src(data["png"])
        context["text"] = _block_text(block, data)
        if block.name == "research-note" and "note" in data:
            context["full"] = data["note"]["audience"] == "members" or paying_readers
        html.append(render_to_string(f"newsletter/blocks/{block.name.replace('-', '_')}.html", context))
        text.append(context["text"])
    return RenderedBody(
        html="\n".join(html), text="\n\n".join(t for t in text if t), images=images.by_cid, data=figures
    )


def email_document(*, title: str, body_html: str, archive_url: str) -> str:
    """The whole email as HTML with its CSS inlined; the unsubscribe link is UNSUBSCRIBE_PLACEHOLDER."""
    document = render_to_string(
        "newsletter/email.html",
        {
            "title": title,
            "body": mark_safe(body_html),  # noqa: S308 - rendered from escaped Markdown and our templates
            "archive_url": archive_url,
            "unsubscribe_url": UNSUBSCRIBE_PLACEHOLDER,
            "site_url": settings.SITE_URL,
        },
    )
    return css_inline.inline(document)


def email_text(*, title: str, body_text: str, archive_url: str) -> str:
    return (
        f"{title}\n{'=' * min(len(title), 78)}\n\n{body_text}\n\n"
        f"Read it on the web: {archive_url}\n"
        f"Unsubscribe: {UNSUBSCRIBE_PLACEHOLDER}\n"
    )
