"""How the /assistant page shows an answer: escaped text, with paragraphs, line breaks and simple lists."""

from __future__ import annotations

import re

from django import template
from django.utils.html import escape, format_html_join
from django.utils.safestring import SafeString, mark_safe

register = template.Library()

_BULLET = re.compile(r"^\s*(?:[-*•]|\d{1,3}[.)])\s+")
_ADVICE = re.compile(r"not\s+investment\s+advice", re.IGNORECASE)


def _list_html(lines: list[str]) -> str:
    items = format_html_join("", "<li>{}</li>", ((_BULLET.sub("", line, count=1),) for line in lines))
    tag = "ol" if all(line.lstrip()[:1].isdigit() for line in lines) else "ul"
    return f"<{tag}>{items}</{tag}>"


def _block_html(lines: list[str]) -> str:
    """Runs of list lines become a list; the lines between them a paragraph with line breaks."""
    out: list[str] = []
    run: list[str] = []
    for line in [*lines, None]:
        bullet = line is not None and bool(_BULLET.match(line))
        if run and (line is None or bullet != bool(_BULLET.match(run[0]))):
            listed = bool(_BULLET.match(run[0]))
            out.append(
                _list_html(run) if listed else "<p>" + "<br>".join(escape(item) for item in run) + "</p>"
            )
            run = []
        if line is not None:
            run.append(line)
    return "".join(out)


@register.filter
def answer_html(text: str) -> SafeString:
    """Every character escaped; blank lines separate paragraphs, and lines starting with "- ", "* ", "• "
    or "1." become list items. Nothing else of the text is interpreted."""
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
