"""The public archive (no sign-in) and its Atom and RSS feeds, parsed with feedparser."""

from __future__ import annotations

import feedparser
from django.test import Client

from newsletter.services import issue_create, issue_deliver, issue_send_now


def _sent(author, title: str, body: str):
    issue = issue_create(user=author, title=title, body=body)
    issue_send_now(user=author, issue_id=issue.pk, start_worker=False)
    issue_deliver(issue_id=issue.pk)
    return issue


def test_the_archive_shows_sent_issues_without_signing_in(staff_author, market):
    first = _sent(staff_author, "First notes", "## Prices\n\n[[market-summary BTC/USDT]]\n")
    draft = issue_create(user=staff_author, title="Unsent draft", body="Not yet.")
    client = Client()

    listing = client.get("/newsletter/archive/").content.decode()
    assert "First notes" in listing and "Unsent draft" not in listing

    page = client.get(f"/newsletter/archive/{first.pk}-first-notes/")
    assert page.status_code == 200
    assert "21,000.00" in page.content.decode()  # the figures frozen when it was sent
    assert client.get(f"/newsletter/archive/{first.pk}-wrong-slug/").status_code == 301
    assert client.get(f"/newsletter/archive/{draft.pk}-unsent-draft/").status_code == 404


def test_the_feeds_parse_and_list_sent_issues_newest_first(staff_author, market):
    _sent(staff_author, "First notes", "One.")
    second = _sent(staff_author, "Second notes", "Two with [[regime BTC/USDT]]\n\n[[regime BTC/USDT]]\n")
    client = Client()

    atom = client.get("/newsletter/feed.atom")
    assert atom["Content-Type"].startswith("application/atom+xml")
    parsed = feedparser.parse(atom.content)
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert [e.title for e in parsed.entries] == ["Second notes", "First notes"]
    assert parsed.entries[0].link.endswith(f"/newsletter/archive/{second.pk}-second-notes/")
    assert "Bullish" in parsed.entries[0].content[0].value

    rss = feedparser.parse(client.get("/newsletter/feed.rss").content)
    assert rss.bozo == 0 and rss.version == "rss20"
    assert [e.title for e in rss.entries] == ["Second notes", "First notes"]
