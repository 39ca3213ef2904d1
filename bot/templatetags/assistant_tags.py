"""How the /assistant page shows an answer: escaped text, with paragraphs, line breaks and simple lists."""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape, format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,3}[.)])\s+")
_ADVICE = re.compile(r"not\s+investment\s+advice", re.IGNORECASE)


def _block_html(lines: list[str]) -> str:
    if all(_BULLET.match(line) for line in lines):
        items = format_html_join("", "<li>{}</li>", ((_BULLET.sub("", line, count=1),) for line in lines))
        ordered = all(re.match(r"^\s*\d", line) for line in lines)
        tag = "ol" if ordered else "ul"
        return f"<{tag}>{items}</{tag}>"
    return "<p>" + "<br>".join(escape(line) for line in lines) + "</p>"


@register.filter
def answer_html(text: str) -> SafeString:
    """Every character escaped; blank lines separate paragraphs, and a paragraph whose lines all start with
    "- ", "* ", "• " or "1." becomes a list. Nothing else of the text is interpreted."""
    blocks: list[list[str]] = [[]]
    for line in str(text or "").replace("\r\n", "\n").split("\n"):
        if line.strip():
            blocks[-1].append(line.rstrip())
        elif blocks[-1]:
            blocks.append([])
    return mark_safe("".join(_block_html(lines) for lines in blocks if lines))  # noqa: S308 - escaped above


@register.filter
def is_market_commentary(text: str) -> bool:
    """The companion labels commentary built from market data "Not investment advice."; the page shows it."""
    return bool(_ADVICE.search(str(text or "")))
