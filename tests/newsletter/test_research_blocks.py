"""Research note blocks (research.selectors): a published note in full in the email to readers its
audience allows, a link in the public archive; a list of the newest notes; an unpublished id refused."""

from __future__ import annotations

import pytest
from django.core import mail

from core.errors import DomainError
from newsletter.choices import Audience
from newsletter.selectors import archive_get
from newsletter.services import issue_create, issue_deliver, issue_send_now
from research.choices import Audience as NoteAudience
from tests.factories import SubscriptionFactory
from tests.factories.research import PublishedNoteFactory


def _send(author, body: str, **kwargs):
    issue = issue_create(user=author, title="With research", body=body, **kwargs)
    issue_send_now(user=author, issue_id=issue.pk, start_worker=False)
    issue_deliver(issue_id=issue.pk)
    return issue


def test_a_members_note_is_in_the_email_and_a_link_in_the_archive(staff_author, user_a):
    note = PublishedNoteFactory(
        title="BTC range thesis", author_name="Ana", body_html="<p>Support held <em>twice</em>.</p>",
        symbols=["BTC/USDT"],
    )
    issue = _send(staff_author, f"Read this:\n\n[[research-note {note.note_id}]]\n")

    html = mail.outbox[0].alternatives[0][0]
    assert "BTC range thesis" in html and "Support held <em" in html
    assert "/research/" in html
    assert "Research note: BTC range thesis by Ana" in mail.outbox[0].body

    archived = archive_get(issue_id=issue.pk)
    assert "BTC range thesis" in archived.html_body
    assert "Support held" not in archived.html_body and "Support held" not in archived.text_body
    assert "Read the note on Nexus" in archived.html_body


def test_a_paying_note_is_shown_in_full_only_to_paid_plans(staff_author, user_a, user_b):
    SubscriptionFactory(user=user_b, plan="pro")
    note = PublishedNoteFactory(audience=NoteAudience.PAYING, body_html="<p>Paid insight.</p>")

    _send(staff_author, f"[[research-note {note.note_id}]]")
    assert all("Paid insight" not in m.alternatives[0][0] for m in mail.outbox)
    mail.outbox.clear()

    _send(staff_author, f"[[research-note {note.note_id}]]", audience=Audience.PLANS, audience_plans=["pro"])
    assert [m.to for m in mail.outbox] == [[user_b.email]]
    assert "Paid insight" in mail.outbox[0].alternatives[0][0]


def test_the_newest_notes_on_a_pair_are_listed(staff_author, market):
    PublishedNoteFactory(title="Old BTC note", symbols=["BTC/USDT"])
    PublishedNoteFactory(title="ETH note", symbols=["ETH/USDT"])
    issue = _send(staff_author, "[[research-notes BTC/USDT 3]]")
    html = archive_get(issue_id=issue.pk).html_body
    assert "Old BTC note" in html and "ETH note" not in html


def test_an_unpublished_note_is_refused(staff_author):
    with pytest.raises(DomainError, match=r"Line 1: Research note 424242 is not published\."):
        issue_create(user=staff_author, title="x", body="[[research-note 424242]]")
