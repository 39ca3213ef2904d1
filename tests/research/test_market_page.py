"""Each market page lists the published notes on its instrument, loaded from research's own URL: the
market page's template knows only that URL (marketdata imports nothing of research)."""

from __future__ import annotations

from django.test import Client

from tests.research.conftest import client_for, publish, write


def test_the_market_page_loads_the_research_fragment_by_url(btc):
    page = client_for_anyone().get("/markets/BTC-USDT")
    assert page.status_code == 200
    assert 'hx-get="/research/on/BTC-USDT/"' in page.content.decode()


def client_for_anyone() -> Client:
    return Client()


def test_the_fragment_lists_published_notes_on_the_instrument(author, reader, btc, btc_usdc):
    on_btc = write(author, title="BTC/USDT levels", body="x", symbols=["BTC/USDT"])
    elsewhere = write(author, title="USDC pair idea", body="x", symbols=["BTC/USDC"])
    write(author, title="Draft on BTC", body="x", symbols=["BTC/USDT"])
    publish(author, on_btc)
    publish(author, elsewhere)
    fragment = client_for(reader).get("/research/on/BTC-USDT/").content.decode()
    assert "BTC/USDT levels" in fragment
    assert "USDC pair idea" not in fragment and "Draft on BTC" not in fragment
    assert "<html" not in fragment  # a fragment, not a page


def test_signed_out_visitors_are_asked_to_log_in(author, btc):
    note = write(author, title="Members only", body="x", symbols=["BTC/USDT"])
    publish(author, note)
    fragment = client_for_anyone().get("/research/on/BTC-USDT/").content.decode()
    assert "Members only" not in fragment and "Log in" in fragment
    assert client_for_anyone().get("/research/on/NOPE-XYZ/").status_code == 404
