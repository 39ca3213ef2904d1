from __future__ import annotations

from datetime import UTC, datetime

import factory

from core.rls import system_context
from research.choices import Audience
from research.models import Note, NoteInstrument, NoteRevision, PublishedNote, PublishedNoteSearch
from tests.factories.accounts import UserFactory
from tests.factories.base import ReferenceFactory, TenantFactory, owner
from tests.factories.marketdata import InstrumentFactory


class NoteFactory(TenantFactory):
    """A private note without thesis or chart, stored as is (no revision rows: use research.services
    where revisions or the published copy must follow)."""

    class Meta:
        model = Note

    title = factory.Sequence(lambda n: f"Note {n}")
    body = "Support held twice."
    tags = factory.LazyFunction(lambda: ["levels"])


class NoteInstrumentFactory(TenantFactory):
    class Meta:
        model = NoteInstrument

    note = factory.SubFactory(NoteFactory, user=owner())
    instrument = factory.SubFactory(InstrumentFactory)


class NoteRevisionFactory(TenantFactory):
    class Meta:
        model = NoteRevision

    note = factory.SubFactory(NoteFactory, user=owner())
    number = factory.Sequence(lambda n: n + 1)
    title = factory.SelfAttribute("note.title")
    body = factory.SelfAttribute("note.body")


class PublishedNoteFactory(ReferenceFactory):
    """A published copy as the publish service writes it (members may read it), without a thesis."""

    class Meta:
        model = PublishedNote

    note_id = factory.Sequence(lambda n: 1_000_000 + n)
    author_id = factory.LazyFunction(lambda: UserFactory().pk)
    author_name = "Author"
    title = factory.Sequence(lambda n: f"Published note {n}")
    body_html = "<p>Support held twice.</p>"
    body_text = "Support held twice."
    audience = Audience.MEMBERS
    first_published_at = factory.LazyFunction(lambda: datetime(2023, 3, 11, tzinfo=UTC))
    published_at = factory.SelfAttribute("first_published_at")
    updated_at = factory.SelfAttribute("first_published_at")


class PublishedNoteSearchFactory(ReferenceFactory):
    """The search row of a published copy. The database writes it (a trigger on the copy), so the factory
    writes the copy and returns the row the trigger made; `published` takes PublishedNoteFactory's
    arguments (`published__tags=[...]`)."""

    class Meta:
        model = PublishedNoteSearch

    published = factory.SubFactory(PublishedNoteFactory)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with system_context(reason="tests: the search row the published copy's trigger wrote"):
            return model_class.objects.get(pk=kwargs["published"].pk)
