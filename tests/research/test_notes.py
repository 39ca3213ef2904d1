"""Writing notes: validation a trader sees, revisions kept on every save, the thesis frozen once published."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest

from core.errors import DomainError
from core.rls import tenant
from research.models import Note, NoteRevision
from research.selectors import note_revision_list, note_symbols
from research.services import NoteInput, note_update
from tests.research.conftest import client_for, publish, write

LONG = {
    "direction": "long", "thesis_symbol": "BTC/USDT", "entry": "20150", "target": "22000", "stop": "19500",
    "horizon": date(2030, 3, 15),
}


def test_a_note_keeps_its_instruments_tags_thesis_and_a_first_revision(author, btc):
    note = write(author, title="Reclaim of 20k", body="Held **twice**.", tags="Macro, breakout macro",
                 symbols=["btc-usdt"], **LONG)
    with tenant(author.pk):
        stored = Note.objects.get(pk=note.pk)
        assert stored.tags == ["macro", "breakout"]
        assert note_symbols(note=stored) == ["BTC/USDT"]
        assert (stored.direction, stored.entry, stored.target, stored.stop) == (
            "long", Decimal("20150"), Decimal("22000"), Decimal("19500"))
        assert [r.number for r in note_revision_list(user=author, note=stored)] == [1]


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"title": "  "}, "title", "Give the note a title."),
        ({"direction": "long", "thesis_symbol": "BTC/USDT", "entry": "100", "target": "90", "stop": "80",
          "horizon": date(2030, 1, 1)}, "target", "the stop must be below the entry and the target above it"),
        ({"direction": "short", "thesis_symbol": "BTC/USDT", "entry": "100", "target": "110", "stop": "120",
          "horizon": date(2030, 1, 1)}, "target", "the target must be below the entry and the stop above it"),
        ({"direction": "long", "thesis_symbol": "BTC/USDT", "entry": "100", "target": "110", "stop": "90"},
         "horizon", "Choose the date"),
        ({"direction": "long", "thesis_symbol": "DOGE/EUR", "entry": "1", "target": "2", "stop": "0.5",
          "horizon": date(2030, 1, 1)}, "thesis_symbol", "Unknown instrument"),
        ({"chart_symbol": "BTC/USDT", "chart_interval": "1h", "chart_start": datetime(2023, 3, 1, tzinfo=UTC),
          "chart_end": datetime(2023, 3, 5, tzinfo=UTC)}, "chart_alt", "Describe what the chart shows"),
        ({"chart_symbol": "BTC/USDT", "chart_interval": "1m", "chart_start": datetime(2023, 1, 1, tzinfo=UTC),
          "chart_end": datetime(2023, 3, 5, tzinfo=UTC), "chart_alt": "x"}, "chart_interval", "more than 5,000"),
        ({"tags": "fine, <script>"}, "tags", "A tag is a word"),
    ],
)
def test_bad_input_says_what_to_fix(author, btc, fields, field, message):
    values = {"title": "A note", **fields}
    with pytest.raises(DomainError) as caught:
        write(author, **values)
    assert caught.value.field == field
    assert message in str(caught.value)
    with tenant(author.pk):
        assert not Note.objects.exists()


def test_every_edit_keeps_a_revision_and_the_page_lists_them(author, btc):
    note = write(author, title="First title", body="v1")
    with tenant(author.pk):
        note_update(user=author, note=note, data=NoteInput(title="Second title", body="v2"))
        note_update(user=author, note=note, data=NoteInput(title="Third title", body="v3", tags=["late"]))
        revisions = list(NoteRevision.objects.filter(note=note).order_by("number"))
    assert [(r.number, r.title, r.body) for r in revisions] == [
        (1, "First title", "v1"), (2, "Second title", "v2"), (3, "Third title", "v3")]
    page = client_for(author).get(f"/research/notes/{note.pk}/revisions/")
    assert page.status_code == 200
    text = page.content.decode()
    assert text.index("Revision 3") < text.index("Revision 2") < text.index("Revision 1")
    assert "First title" in text and "Third title" in text


def test_a_published_thesis_cannot_change_but_the_text_can(author, btc):
    note = write(author, title="Call", body="v1", symbols=["BTC/USDT"], **LONG)
    publish(author, note)
    with tenant(author.pk), pytest.raises(DomainError, match="cannot change"):
        note_update(user=author, note=note, data=NoteInput(title="Call", body="v1", **{**LONG, "target": "25000"}))
    with tenant(author.pk):
        note_update(user=author, note=note, data=NoteInput(title="Call, updated", body="v2", **LONG))
        assert Note.objects.get(pk=note.pk).title == "Call, updated"


def test_the_form_creates_a_note_and_shows_errors_beside_fields(author, btc):
    client = client_for(author)
    bad = client.post("/research/new/", {"title": "Short", "direction": "short", "thesis_symbol": "BTC/USDT",
                                          "entry": "100", "target": "110", "stop": "120", "horizon": "2030-01-01"})
    assert bad.status_code == 422
    assert "the target must be below the entry" in bad.content.decode()
    ok = client.post("/research/new/", {"title": "Levels", "body": "**Bold** claim", "tags": "levels",
                                         "symbols": ["BTC/USDT"]})
    assert ok.status_code == 302
    page = client.get(ok["Location"])
    assert "<strong>Bold</strong> claim" in page.content.decode()
    assert "Private" in page.content.decode()


def test_preview_renders_safely(author):
    response = client_for(author).post("/research/preview/", {"body": "**hi** <script>alert(1)</script>"})
    assert response.status_code == 200
    assert "<strong>hi</strong>" in response.content.decode()
    assert "<script>" not in response.content.decode()


def test_the_edit_form_locks_a_published_thesis(author, btc):
    note = write(author, title="Call", body="v1", symbols=["BTC/USDT"], **LONG)
    publish(author, note)
    client = client_for(author)
    page = client.get(f"/research/notes/{note.pk}/edit/").content.decode()
    [target_input] = re.findall(r'<input[^>]*name="target"[^>]*>', page)
    assert "disabled" in target_input
    saved = client.post(f"/research/notes/{note.pk}/edit/", {"title": "Call v2", "body": "v2", "symbols": ["BTC/USDT"],
                                                           "target": "99999"})
    assert saved.status_code == 302
    with tenant(author.pk):
        stored = Note.objects.get(pk=note.pk)
    assert (stored.title, stored.target) == ("Call v2", Decimal("22000"))
