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


def test_ranking_and_filters_with_the_candidate_bound(author, reader, btc, btc_usdc, monkeypatch):
    """Only the newest SEARCH_CANDIDATES matches are ranked (after the filters): within them a title match
    still ranks above body-only matches, filters apply before the bound, and a word beyond the ranking
    vector's share of the body is still found."""
    from datetime import UTC, datetime, timedelta

    import research.selectors
    from tests.factories import SubscriptionFactory

    SubscriptionFactory(user=author)  # more published notes than the Free plan allows
    monkeypatch.setattr(research.selectors, "SEARCH_CANDIDATES", 4)
    day = datetime(2026, 1, 1, tzinfo=UTC)

    def published(title, body, at, **fields):
        publish(author, write(author, title=title, body=body, **fields), now=day + timedelta(hours=at))

    published("Halving supply shock", "Miners sell less.", 0, tags=["cycles"], symbols=["BTC/USDC"])
    published("Weekly wrap one", "The halving is near.", 1, symbols=["BTC/USDT"])
    published("Weekly wrap two", "Again the halving.", 2, symbols=["BTC/USDT"])
    published("Long read", "word " * 400 + "and the halving at the very end.", 3, symbols=["BTC/USDT"])

    with tenant(reader.pk):
        hits = note_search(user=reader, query="halving")
    # four matches, all candidates: the oldest note ranks first on its title; the match past the ranking
    # vector's part of the body is found and ranks last (no rank), the others newest first
    assert _titles(hits) == ["Halving supply shock", "Weekly wrap two", "Weekly wrap one", "Long read"]
    assert hits[0].rank > hits[1].rank > 0
    assert hits[3].rank == 0

    published("Weekly wrap three", "Halving talk.", 4, symbols=["BTC/USDT"])
    with tenant(reader.pk):
        # five matches, four candidates: the oldest one is not ranked any more (the documented trade-off)
        assert "Halving supply shock" not in _titles(note_search(user=reader, query="halving"))
        # filters narrow the matches before the bound: the title match is found again
        assert _titles(note_search(user=reader, query="halving", tag="cycles")) == ["Halving supply shock"]
        assert _titles(note_search(user=reader, query="halving", symbol="BTC-USDC")) == ["Halving supply shock"]
        by_symbol = _titles(note_search(user=reader, query="halving", symbol="BTC/USDT"))
        assert by_symbol == ["Weekly wrap three", "Weekly wrap two", "Weekly wrap one", "Long read"]
    with tenant(author.pk):
        mine = _titles(note_search(user=author, query="halving", mine=True, tag="cycles"))
        assert mine == ["Halving supply shock"]
