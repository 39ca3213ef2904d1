"""Full-text search: title matches rank above tag matches above body matches, snippets highlight the
words (escaped), filters by tag, symbol and author, and only notes the reader may read."""

from __future__ import annotations

import pytest

from core.errors import DomainError
from core.rls import tenant
from research.selectors import note_search
from tests.research.conftest import client_for, publish, write


@pytest.fixture
def published(author, reader, btc, btc_usdc):
    in_body = write(author, title="Weekly wrap", body="Funding flipped; the halving narrative is back.",
                    symbols=["BTC/USDT"], tags=["macro"])
    in_title = write(reader, title="Halving cycle and miners", body="Supply shock thoughts.", symbols=["BTC/USDC"],
                     tags=["cycles"])
    in_tags = write(author, title="Miner flows", body="Outflows from pools.", tags=["halving"], symbols=["BTC/USDC"])
    unrelated = write(author, title="ETF flows", body="Nothing about it.", tags=["macro"])
    for note in (in_body, in_title, in_tags, unrelated):
        publish(note.user, note)
    return {"body": in_body, "title": in_title, "tags": in_tags}


def _titles(hits):
    return [h.title for h in hits]


def test_title_matches_rank_above_tag_matches_above_body_matches(published, reader):
    with tenant(reader.pk):
        hits = note_search(user=reader, query="halving")
    assert _titles(hits) == ["Halving cycle and miners", "Miner flows", "Weekly wrap"]
    assert hits[0].rank > hits[1].rank > hits[2].rank


def test_snippets_mark_the_match_and_escape_the_rest(author, reader, btc):
    note = write(author, title="Escaping", body="The <b>halving</b> & the miners")
    publish(author, note)
    with tenant(reader.pk):
        [hit] = note_search(user=reader, query="halving")
    assert "<mark>halving</mark>" in hit.snippet
    assert "<b>" not in hit.snippet  # the author's text never becomes markup
    assert "&amp;" in hit.snippet


def test_filters_by_tag_symbol_and_author(published, author, reader):
    with tenant(reader.pk):
        assert _titles(note_search(user=reader, query="halving", tag="cycles")) == ["Halving cycle and miners"]
        assert _titles(note_search(user=reader, query="halving", symbol="BTC-USDT")) == ["Weekly wrap"]
        assert _titles(note_search(user=reader, query="halving", author_id=author.pk)) == ["Miner flows", "Weekly wrap"]


def test_drafts_are_searched_only_by_their_author(author, reader, btc):
    write(author, title="Draft about halving", body="not yet")
    with tenant(reader.pk):
        assert note_search(user=reader, query="halving") == []
    with tenant(author.pk):
        assert note_search(user=author, query="halving") == []  # the community search: published only
        assert _titles(note_search(user=author, query="halving", mine=True)) == ["Draft about halving"]


def test_an_empty_or_overlong_query_is_an_error_not_a_crash(reader):
    with tenant(reader.pk):
        for query in ("", "   ", "x" * 201):
            with pytest.raises(DomainError):
                note_search(user=reader, query=query)


def test_the_search_page_shows_ranked_results(published, reader):
    page = client_for(reader).get("/research/search/", {"q": "halving"}).content.decode()
    assert "3 results" in page
    assert page.index("Halving cycle and miners") < page.index("Miner flows") < page.index("Weekly wrap")
    assert "<mark>" in page
    odd = client_for(reader).get("/research/search/", {"q": "!!!& | ((("})
    assert odd.status_code == 200
