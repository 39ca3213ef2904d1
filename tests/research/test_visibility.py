"""Who can read what: a note is its author's alone until published; a published note is readable by every
signed-in member, or by members on a paid plan only; unpublishing takes it out of everyone else's view."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction

from billing.services import PlanLimitExceeded
from core.errors import DomainError
from core.rls import tenant
from research.models import Note, PublishedNote
from research.selectors import note_published_get, note_published_list, published_list
from research.services import note_delete, note_unpublish
from tests.research.conftest import client_for, publish, write


def test_a_private_note_is_a_404_for_anyone_else_even_by_direct_url(author, reader, btc):
    note = write(author, title="My secret levels", body="21,900 holds", symbols=["BTC/USDT"])
    other = client_for(reader)
    for url in (f"/research/notes/{note.pk}/", f"/research/notes/{note.pk}/edit/",
                f"/research/notes/{note.pk}/revisions/", f"/research/community/{note.pk}/"):
        response = other.get(url)
        assert response.status_code == 404, url
        assert b"My secret levels" not in response.content
    assert other.post(f"/research/notes/{note.pk}/publish/", {"audience": "members"}).status_code == 404
    assert other.post(f"/research/notes/{note.pk}/delete/").status_code == 404
    assert b"My secret levels" not in other.get("/research/community/").content
    assert b"My secret levels" not in other.get("/research/search/?q=secret").content
    assert client_for(author).get(f"/research/notes/{note.pk}/").status_code == 200


def test_the_database_refuses_another_users_note_whatever_the_code_asks(author, reader, btc):
    note = write(author, title="Mine", body="x")
    with tenant(reader.pk):
        assert not Note.objects.filter(pk=note.pk).exists()  # no user filter here: RLS alone hides it
        assert Note.objects.filter(pk=note.pk).update(title="stolen") == 0
    with tenant(author.pk):
        assert Note.objects.get(pk=note.pk).title == "Mine"


def test_the_runtime_role_cannot_write_published_copies(author, reader, btc):
    note = write(author, title="Published", body="x")
    publish(author, note)
    with (
        tenant(reader.pk),
        pytest.raises(DatabaseError, match="permission denied"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute("UPDATE research_publishednote SET title = 'defaced'")


def test_a_published_note_is_readable_by_every_member(author, reader, btc):
    note = write(author, title="BTC reclaims 20k", body="Held **twice**.", symbols=["BTC/USDT"])
    publish(author, note)
    page = client_for(reader).get(f"/research/community/{note.pk}/")
    assert page.status_code == 200
    text = page.content.decode()
    assert "BTC reclaims 20k" in text and "Held <strong>twice</strong>." in text and "Ada Author" in text
    assert "BTC reclaims 20k" in client_for(reader).get("/research/community/").content.decode()


def test_a_paying_only_note_is_invisible_to_a_free_member(author, reader, paying_reader, btc):
    note = write(author, title="Premium call", body="For subscribers", symbols=["BTC/USDT"])
    publish(author, note, audience="paying")
    free = client_for(reader)
    assert free.get(f"/research/community/{note.pk}/").status_code == 404
    assert b"Premium call" not in free.get("/research/community/").content
    assert b"Premium call" not in free.get("/research/on/BTC-USDT/").content
    paying = client_for(paying_reader)
    assert paying.get(f"/research/community/{note.pk}/").status_code == 200
    assert b"Premium call" in paying.get("/research/community/").content
    assert client_for(author).get(f"/research/community/{note.pk}/").status_code == 200  # the author's own


def test_unpublish_removes_it_from_others_view(author, reader, btc):
    note = write(author, title="Short-lived", body="soon gone", symbols=["BTC/USDT"])
    publish(author, note)
    assert client_for(reader).get(f"/research/community/{note.pk}/").status_code == 200
    with tenant(author.pk):
        note_unpublish(user=author, note=note)
    assert client_for(reader).get(f"/research/community/{note.pk}/").status_code == 404
    with tenant(reader.pk):
        assert list(published_list(user=reader)) == []
    with pytest.raises(DomainError):
        note_published_get(note_id=note.pk)
    # Nothing of the text is left where others could read it.
    assert not PublishedNote.objects.filter(body_text__contains="soon gone").exists()
    assert client_for(author).get(f"/research/notes/{note.pk}/").status_code == 200


def test_an_unpublished_thesis_stays_in_the_track_record_without_its_text(author, reader, btc):
    note = write(author, title="Bad call", body="wrong", symbols=["BTC/USDT"], direction="long",
                 thesis_symbol="BTC/USDT", entry="100", target="120", stop="90", horizon="2030-01-01")
    publish(author, note)
    with tenant(author.pk):
        note_delete(user=author, note=note)
    page = client_for(reader).get(f"/research/authors/{author.pk}/").content.decode()
    assert "Withdrawn note" in page and "Bad call" not in page
    assert "1 withdrawn by the author" in page


def test_publishing_counts_against_the_plan(author, btc):
    notes = [write(author, title=f"Note {i}", body="x") for i in range(4)]
    for note in notes[:3]:
        publish(author, note)
    with pytest.raises(PlanLimitExceeded, match="3 published research notes"):
        publish(author, notes[3])
    with tenant(author.pk):
        assert not Note.objects.get(pk=notes[3].pk).is_published


def test_the_newsletter_selectors_return_published_notes_with_safe_html(author, btc, btc_usdc):
    first = write(author, title="On BTC/USDT", body="**Bold** <script>x</script>", symbols=["BTC/USDT"])
    second = write(author, title="On BTC/USDC", body="other", symbols=["BTC/USDC"])
    draft = write(author, title="Draft", body="never", symbols=["BTC/USDT"])
    publish(author, first)
    publish(author, second, audience="paying")
    got = note_published_get(note_id=first.pk)
    assert got.title == "On BTC/USDT" and "<strong>Bold</strong>" in got.body_html
    assert "<script>" not in got.body_html
    assert got.url == f"/research/community/{first.pk}/"
    assert [n.title for n in note_published_list(symbol="BTC-USDT")] == ["On BTC/USDT"]
    assert {n.title for n in note_published_list()} == {"On BTC/USDT", "On BTC/USDC"}
    assert [n.audience for n in note_published_list(symbol="BTC/USDC")] == ["paying"]
    with pytest.raises(DomainError):
        note_published_get(note_id=draft.pk)
