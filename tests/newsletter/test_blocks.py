"""Data blocks expanded from stored data (candles, quotes, regime readings), in the web and email HTML and
the plain-text alternative; a bad block is a field error when the issue is saved."""

from __future__ import annotations

import pytest

from core.errors import DomainError
from newsletter.blocks import body_split
from newsletter.rendering import body_render
from newsletter.services import issue_create, issue_preview


def test_market_summary_regime_and_movers_show_the_stored_figures(staff_author, market):
    body = "Intro.\n\n[[market-summary]]\n\n[[regime BTC/USDT]]\n\n[[movers 24h 2]]\n"
    rendered = body_render(user=staff_author, body=body, email=False)

    assert "21,000.00" in rendered.html and "+5.00%" in rendered.html  # BTC price and its 24 h change
    assert "980.00" in rendered.html and "−2.00%" in rendered.html
    assert "Bullish" in rendered.html and "ADX 31.3" in rendered.html and "1.23%" in rendered.html
    # Ten hourly candles: BTC 20,000.00 -> 21,000.00 (+5.00%), ETH 1,000.00 -> 980.00 (−2.00%); biggest first.
    movers = rendered.data[2]["data"]["movers"]
    assert [(m["pair"], m["change_pct"], m["open"], m["close"]) for m in movers] == [
        ("BTC/USDT", "+5.00%", "20,000.00", "21,000.00"),
        ("ETH/USDT", "−2.00%", "1,000.00", "980.00"),
    ]
    assert "- BTC/USDT: +5.00% (20,000.00 to 21,000.00)" in rendered.text
    assert "BTC/USDT regime: Bullish" in rendered.text


def test_a_chart_is_an_inline_image_in_email_and_a_data_url_on_the_web(staff_author, market):
    email = body_render(user=staff_author, body="[[chart BTC/USDT 1h 10]]", email=True)
    assert list(email.images) == ["chart1@nexus"] and 'src="cid:chart1@nexus"' in email.html
    assert "close 21,000.00" in email.text  # the chart's text alternative, also its alt text
    assert 'alt="BTC/USDT 1h chart, 10 bars' in email.html

    preview = issue_preview(
        user=staff_author,
        issue=issue_create(user=staff_author, title="Chart", body="[[chart BTC/USDT 1h 10]]"),
    )
    assert "data:image/png;base64,iVBORw0KGgo" in preview.web_html


def test_markdown_cannot_inject_markup(staff_author, market):
    rendered = body_render(user=staff_author, body="<script>alert(1)</script> [x](javascript:alert(1))", email=False)
    assert "<script>" not in rendered.html and 'href="javascript' not in rendered.html


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("[[weather]]", "Line 3: There is no data block [[weather]]"),
        ("[[regime DOGE/EUR]]", "Line 3: Unknown instrument"),
        ("[[movers 2y]]", "Line 3: The period must be one of 24h, 7d, 30d"),
        ("[[chart BTC/USDT 4h]]", "Line 3: The interval must be one of 1m, 5m, 1h, 1d"),
    ],
)
def test_a_bad_block_is_refused_with_its_line(staff_author, market, line, message):
    with pytest.raises(DomainError, match=message.replace("[", r"\[").replace("]", r"\]")) as raised:
        issue_create(user=staff_author, title="Bad", body=f"Intro\n\n{line}\n")
    assert raised.value.field == "body"


def test_blocks_inside_fenced_code_are_shown_as_written(market):
    segments = body_split("```\n[[weather]]\n```\n")
    assert [s.block for s in segments] == [None]
