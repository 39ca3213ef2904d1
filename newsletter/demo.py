"""Demo data: one issue from the demo admin, sent through the real send path to the demo users, so the
archive and the feed have an entry (`manage.py seed_demo`; idempotent)."""

from __future__ import annotations

from accounts.management.commands.seed_demo import DEMO_ADMIN
from accounts.selectors import user_by_email
from newsletter.models import Issue
from newsletter.services import issue_create, issue_deliver, issue_send_now

DEMO_TITLE = "Welcome to the Nexus newsletter"
DEMO_BODY = """Each week the Nexus team writes about the markets Nexus follows, with the figures filled in from
the platform's own market data when the issue is sent.

## Where the markets stand

[[market-summary]]

## What moved this week

[[movers 7d 5]]

Read past issues in the [archive](/newsletter/archive/), or follow the Atom feed. You can stop these
emails at any time with the unsubscribe link at the bottom.

Not investment advice.
"""


def newsletter_demo_seed(*, trader, stdout) -> None:
    admin = user_by_email(email=DEMO_ADMIN["email"])
    if admin is None:
        return
    if Issue.objects.filter(user_id=admin.pk, title=DEMO_TITLE).exists():
        return
    issue = issue_create(user=admin, title=DEMO_TITLE, body=DEMO_BODY)
    issue_send_now(user=admin, issue_id=issue.pk, start_worker=False)
    report = issue_deliver(issue_id=issue.pk)
    stdout.write(f"Newsletter: sent “{DEMO_TITLE}” to {report.sent} members; it is in /newsletter/archive/")
