"""The search side table (`research_publishednotesearch`): a trigger keeps it in step with the published
copies (publish, re-publish, audience change, unpublish, any write path), the migration's backfill copies
existing notes, the runtime role may only read it, and search over it returns what search over the
published copies returned before it existed."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db import DatabaseError, connection, transaction
from django.db.models import F

import research.selectors
from core.rls import system_context, tenant
from core.tables import TABLES, TableClass
from research.models import PublishedNote, PublishedNoteSearch
from research.selectors import note_search, published_list
from research.services import NoteInput, note_delete, note_unpublish, note_update
from tests.factories import SubscriptionFactory
from tests.research.conftest import publish, write

SYNCED = ("author_id", "audience", "published_at", "tags", "symbols", "search_vector", "rank_vector")
DAY = datetime(2026, 1, 5, tzinfo=UTC)


def _side_rows() -> dict[int, dict]:
    with system_context(reason="test: read the search side table"):
        return {row["published_id"]: row for row in PublishedNoteSearch.objects.values("published_id", *SYNCED)}


def _expected_rows() -> dict[int, dict]:
    """What the side table must hold: every published, not withdrawn copy's searched columns."""
    with system_context(reason="test: read the published copies"):
        copies = list(PublishedNote.objects.filter(withdrawn_at__isnull=True).values("id", *SYNCED))
    expected = {}
    for row in copies:
        if row["rank_vector"] == row["search_vector"]:
            row["rank_vector"] = None  # stored once: ranked with coalesce(rank_vector, search_vector)
        published_id = row.pop("id")
        expected[published_id] = {"published_id": published_id, **row}
    return expected


def _assert_in_step() -> None:
    assert _side_rows() == _expected_rows()


def _copy(note) -> PublishedNote:
    with system_context(reason="test: read the published copy"):
        return PublishedNote.objects.get(note_id=note.pk)


def test_the_side_table_is_shared_reference_data():
    assert TABLES["research_publishednotesearch"].kind is TableClass.REFERENCE


def test_publishing_writes_the_search_row(author, btc):
    note = write(author, title="Halving cycle", body="Miners sell less.", tags=["cycles"], symbols=["BTC/USDT"])
    publish(author, note, now=DAY)
    copy = _copy(note)
    [row] = _side_rows().values()
    assert row["published_id"] == copy.pk and row["author_id"] == author.pk and row["audience"] == "members"
    assert row["published_at"] == DAY and row["tags"] == ["cycles"] and row["symbols"] == ["BTC/USDT"]
    _assert_in_step()


def test_editing_and_publishing_again_resync_the_search_row(author, reader, btc, btc_usdc):
    note = write(author, title="Halving cycle", body="Miners sell less.", tags=["cycles"], symbols=["BTC/USDT"])
    publish(author, note, now=DAY)
    with tenant(author.pk):  # an edit of a published note updates its copy (research.services.note_update)
        note = note_update(user=author, note=note, data=NoteInput(
            title="Funding reset", body="Longs flushed.", tags=["macro"], symbols=["BTC/USDC"]))
    _assert_in_step()
    with tenant(reader.pk):
        assert note_search(user=reader, query="halving") == []
        assert note_search(user=reader, query="funding", symbol="BTC/USDT") == []
        assert [h.title for h in note_search(user=reader, query="funding", tag="macro", symbol="BTC/USDC")] == [
            "Funding reset"
        ]
    publish(author, note, now=DAY + timedelta(days=1))  # publishing again re-syncs; the date stays
    _assert_in_step()
    assert [r["published_at"] for r in _side_rows().values()] == [DAY]


def test_an_audience_change_reaches_the_search_row(author, reader, paying_reader, btc):
    note = write(author, title="Halving call", body="x")
    publish(author, note, audience="members")
    publish(author, note, audience="paying")
    assert [r["audience"] for r in _side_rows().values()] == ["paying"]
    _assert_in_step()
    with tenant(reader.pk):
        assert note_search(user=reader, query="halving") == []
    with tenant(paying_reader.pk):
        assert [h.title for h in note_search(user=paying_reader, query="halving")] == ["Halving call"]
    with tenant(author.pk):
        assert [h.mine for h in note_search(user=author, query="halving")] == [True]
    publish(author, note, audience="members")
    with tenant(reader.pk):
        assert [h.title for h in note_search(user=reader, query="halving")] == ["Halving call"]


def test_unpublishing_removes_the_search_row_with_or_without_a_thesis(author, reader, btc):
    SubscriptionFactory(user=author)
    plain = write(author, title="Halving plain", body="x")
    thesis = write(author, title="Halving thesis", body="y", symbols=["BTC/USDT"], direction="long",
                   thesis_symbol="BTC/USDT", entry="100", target="120", stop="90", horizon="2030-01-01")
    kept = write(author, title="Halving kept", body="z")
    for note in (plain, thesis, kept):
        publish(author, note)
    assert len(_side_rows()) == 3
    with tenant(author.pk):
        note_unpublish(user=author, note=plain)  # no thesis: the copy goes
        note_delete(user=author, note=thesis)  # a thesis: the copy stays, withdrawn
    assert _copy(thesis).is_withdrawn
    assert [r["published_id"] for r in _side_rows().values()] == [_copy(kept).pk]
    _assert_in_step()
    for user in (reader, author):
        with tenant(user.pk):
            assert [h.title for h in note_search(user=user, query="halving")] == ["Halving kept"]


def test_any_write_to_the_published_copies_keeps_the_search_rows(author, btc):
    """The trigger, not the service, keeps the side table: a bulk write on the system connection too."""
    SubscriptionFactory(user=author)
    notes = [write(author, title=f"Note {i}", body="halving") for i in range(3)]
    for note in notes:
        publish(author, note)
    with system_context(reason="test: a bulk write"):
        PublishedNote.objects.filter(note_id=notes[0].pk).update(tags=["bulk"], audience="paying")
        PublishedNote.objects.filter(note_id=notes[1].pk).update(withdrawn_at=DAY)
        PublishedNote.objects.filter(note_id=notes[2].pk).delete()
        PublishedNote.objects.filter(note_id=notes[1].pk).update(withdrawn_at=None)  # back: the row returns
    _assert_in_step()
    assert len(_side_rows()) == 2


def test_the_migrations_backfill_copies_every_readable_published_note(author, btc):
    SubscriptionFactory(user=author)
    notes = [write(author, title=f"Note {i}", body="halving", tags=["t"]) for i in range(3)]
    for note in notes:
        publish(author, note)
    with tenant(author.pk):
        note_unpublish(user=author, note=notes[0])
    migration = importlib.import_module("research.migrations.0003_published_search")
    with system_context(reason="test: rerun the backfill"), connection.cursor() as cursor:
        cursor.execute("DELETE FROM research_publishednotesearch")
        cursor.execute(migration.BACKFILL)
    assert len(_side_rows()) == 2
    _assert_in_step()


def test_the_runtime_role_reads_the_search_rows_and_writes_none(author, reader, btc):
    publish(author, write(author, title="Halving", body="x"))
    with tenant(reader.pk), connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM research_publishednotesearch")
        assert cursor.fetchone()[0] == 1
    for statement in ("DELETE FROM research_publishednotesearch",
                      "UPDATE research_publishednotesearch SET audience = 'members'"):
        with (
            tenant(reader.pk),
            pytest.raises(DatabaseError, match="permission denied"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(statement)


# --- the same results as searching the published copies ------------------------------------------------


def _search_before(*, user, query: str, tag=None, symbol=None, author_id=None, limit=20) -> list[tuple]:
    """Search as it was before the side table, on the published copies: the newest SEARCH_CANDIDATES
    matches of the readable, filtered copies, ranked with ts_rank_cd over rank_vector, ties newest first."""
    search = SearchQuery(query, search_type="websearch", config="english")
    matches = published_list(user=user, symbol=symbol, tag=tag, author_id=author_id).filter(search_vector=search)
    candidates = matches.order_by("-published_at", "-pk").values("pk")[: research.selectors.SEARCH_CANDIDATES]
    rows = (
        PublishedNote.objects.filter(pk__in=candidates)
        .annotate(rank=SearchRank(F("rank_vector"), search, cover_density=True))
        .order_by("-rank", "-published_at", "-pk")[:limit]
    )
    return [(row.note_id, float(row.rank)) for row in rows]


@pytest.fixture
def corpus(author, reader, paying_reader, btc, btc_usdc):
    """Two authors' notes: words in titles, tags, short and long bodies (past the ranking vector's 1,500
    characters), both audiences, both instruments, equal publication times, a withdrawn and a deleted one."""
    SubscriptionFactory(user=author)
    made = []
    shapes = [
        ("Halving supply shock", "Miners sell less after the halving.", ["cycles"], ["BTC/USDC"], "members"),
        ("Weekly wrap", "The halving is near; funding is flat.", ["macro"], ["BTC/USDT"], "paying"),
        ("Miner flows", "Outflows from pools.", ["halving"], ["BTC/USDC"], "members"),
        ("Long read", "word " * 400 + "and the halving at the very end.", ["macro"], ["BTC/USDT"], "members"),
        ("Short squeeze ahead", "A short squeeze on funding.", ["levels"], ["BTC/USDT"], "paying"),
        ("Squeeze watch", "Shorts pile in; squeeze short of a level.", ["levels"], ["BTC/USDT"], "members"),
        ("Squeezed", "The short and the squeeze, apart.", ["levels"], ["BTC/USDC"], "members"),
        ("ETF flows", "Nothing about supply.", ["macro"], ["BTC/USDC"], "members"),
        ("Halving halving", "halving " * 5, [], ["BTC/USDT"], "members"),
    ]
    for n in range(24):
        title, body, tags, symbols, audience = shapes[n % len(shapes)]
        user = author if n % 3 else paying_reader
        note = write(user, title=f"{title} {n}", body=body, tags=tags, symbols=symbols)
        # pairs share a publication time: the tie goes to the newer copy
        publish(user, note, audience=audience, now=DAY + timedelta(hours=n // 2))
        made.append(note)
    with tenant(author.pk):
        note_unpublish(user=author, note=made[1])
        note_delete(user=author, note=made[2])
    return made


QUERIES = [
    ("halving", {}),
    ("halving", {"tag": "Macro"}),
    ("halving", {"symbol": "BTC-USDC"}),
    ("halving", {"symbol": "BTC/USDT", "tag": "macro"}),
    ('"short squeeze"', {}),
    ('"short squeeze"', {"tag": "levels"}),
    ('"squeeze short" or "halving at the very end"', {}),
    ('"short squeeze" -funding', {}),
    ('-"short squeeze" squeeze', {}),
    ('"halving" supply', {}),
    ('"', {}),
    ("squeeze -funding", {}),
    ("halving or etf", {}),
    ("supply", {}),
    ("nothing-matches-this", {}),
]


@pytest.mark.parametrize("candidates", [2000, 5])
def test_search_returns_what_search_over_the_published_copies_returned(
    corpus, author, reader, paying_reader, candidates, monkeypatch
):
    monkeypatch.setattr(research.selectors, "SEARCH_CANDIDATES", candidates)
    _assert_in_step()
    # short bodies rank on search_vector itself, long ones on their own rank_vector: both are compared
    assert {row["rank_vector"] is None for row in _side_rows().values()} == {True, False}
    compared = 0
    for user in (reader, paying_reader, author):
        for query, filters in [*QUERIES, ("halving", {"author_id": author.pk}), ("halving", {"author_id": paying_reader.pk})]:
            with tenant(user.pk):
                before = _search_before(user=user, query=query, **filters)
                now = [(h.note_id, h.rank) for h in note_search(user=user, query=query, **filters)]
                assert now == before, (user.email, query, filters)
                short = [(h.note_id, h.rank) for h in note_search(user=user, query=query, limit=3, **filters)]
                assert short == before[:3]
            compared += len(before)
    assert compared > 50  # the corpus matches: the comparison is not of empty lists
