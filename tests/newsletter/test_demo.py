"""The demo seed sends one issue through the real send path to the demo users; running it again sends
nothing more."""

from __future__ import annotations

from io import StringIO

from django.core import mail
from django.core.management import call_command
from django.test import Client

from accounts.management.commands.seed_demo import DEMO_ADMIN, DEMO_TRADER
from newsletter.demo import DEMO_TITLE
from newsletter.selectors import archive_list


def test_the_demo_has_one_sent_issue_in_the_archive(db):
    out = StringIO()
    call_command("seed_demo", stdout=out)
    call_command("seed_demo", stdout=StringIO())

    assert f"Newsletter: sent “{DEMO_TITLE}” to 2 members" in out.getvalue()
    assert sorted(m.to[0] for m in mail.outbox) == sorted([DEMO_ADMIN["email"], DEMO_TRADER["email"]])
    assert all("List-Unsubscribe" in m.extra_headers for m in mail.outbox)
    assert [issue.title for issue in archive_list()] == [DEMO_TITLE]
    assert DEMO_TITLE in Client().get("/newsletter/archive/").content.decode()
