"""The archive as Atom and RSS feeds (feedgen), newest sent issues first."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from feedgen.feed import FeedGenerator

from core.notifications import absolute_url
from newsletter.selectors import archive_list

FEED_ENTRIES = 30


def _feed() -> FeedGenerator:
    feed = FeedGenerator()
    archive = absolute_url(reverse("newsletter:archive"))
    feed.id(archive)
    feed.title("Nexus newsletter")
    feed.subtitle("Market summaries, regimes and movers from the Nexus team and community.")
    feed.link(href=archive, rel="alternate")
    feed.link(href=absolute_url(reverse("newsletter:feed_atom")), rel="self")
    feed.language("en")
    issues = list(archive_list(limit=FEED_ENTRIES))
    if issues:
        feed.updated(issues[0].sent_at)
    for issue in reversed(issues):  # feedgen puts the last added first
        url = absolute_url(reverse("newsletter:archive_issue", args=[issue.issue_id, issue.slug]))
        entry = feed.add_entry()
        entry.id(url)
        entry.guid(url, permalink=True)
        entry.title(issue.title)
        entry.link(href=url)
        entry.author({"name": issue.author_name})
        entry.published(issue.sent_at)
        entry.updated(issue.sent_at)
        entry.summary(issue.summary or issue.title)
        entry.content(issue.html_body, type="html")
    return feed


def atom_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_feed().atom_str(pretty=True), content_type="application/atom+xml; charset=utf-8")


def rss_view(request: HttpRequest) -> HttpResponse:
    return HttpResponse(_feed().rss_str(pretty=True), content_type="application/rss+xml; charset=utf-8")
