"""Markdown to safe HTML: markdown-it-py renders (raw HTML in the source is escaped, not passed through),
then nh3 (ammonia) keeps only the tags and attributes below, only http(s) and mailto links, and no event
handler or style attribute at all. Both steps, always: the renderer alone would keep a `javascript:` link
written as an autolink's lookalike, the sanitiser alone would keep nothing useful of Markdown.
"""

from __future__ import annotations

import html

import nh3
from markdown_it import MarkdownIt

ALLOWED_TAGS = frozenset(
    {
        "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del", "code", "pre",
        "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
    }
)
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "ol": {"start"}, "th": {"align"}, "td": {"align"}}
URL_SCHEMES = frozenset({"http", "https", "mailto"})

_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False}).enable(
    ["table", "strikethrough"]
)


def markdown_render(source: str) -> str:
    """The note body as HTML a page can include as is (`|safe`)."""
    return sanitise_html(_markdown.render(source or ""))


def sanitise_html(fragment: str) -> str:
    return nh3.clean(
        fragment,
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer nofollow ugc",
        strip_comments=True,
    )


def html_text(fragment: str) -> str:
    """The text of an HTML fragment (search, snippets, previews), tags dropped and entities decoded."""
    return " ".join(html.unescape(nh3.clean(fragment, tags=set())).split())
