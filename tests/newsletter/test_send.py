"""Sending an issue: one email per member with the unsubscribe headers, unsubscribed members skipped,
suppressed addresses suppressed, counted per issue, archived once; a second run sends nothing."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core import mail

from billing.services import PlanLimitExceeded
from core.errors import DomainError
from newsletter.choices import Audience, IssueStatus
from newsletter.selectors import archive_list, issue_get, issue_stats
from newsletter.services import (
    issue_create,
    issue_deliver,
    issue_send_now,
    preference_set,
    suppression_record,
)
from tests.factories import SubscriptionFactory, UserFactory

BODY = "## Prices\n\n[[market-summary]]\n\n[[regime BTC/USDT]]\n"


def _send(author, **kwargs):
    issue = issue_create(user=author, title="Weekly notes", body=kwargs.pop("body", BODY), **kwargs)
    issue_send_now(user=author, issue_id=issue.pk, start_worker=False)
    return issue, issue_deliver(issue_id=issue.pk)


def test_every_member_gets_one_email_with_unsubscribe_headers(staff_author, members, market):
    preference_set(user_id=members[0].pk, subscribed=False)
    suppression_record(email=members[1].email.upper(), event_type="bounced", detail="hard bounce")

    issue, report = _send(staff_author)

    recipients = sorted(m.to[0] for m in mail.outbox)
    expected = sorted({m.email for m in members[2:]} | {staff_author.email})
    assert recipients == expected
    assert (report.sent, report.skipped, report.suppressed, report.failed) == (4, 1, 1, 0)
    message = mail.outbox[0]
    assert message.extra_headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert message.extra_headers["List-Unsubscribe"].startswith(f"<{settings.SITE_URL}/newsletter/unsubscribe/")
    assert message.extra_headers["Message-ID"].startswith(f"<newsletter.{issue.pk}.")
    html = message.alternatives[0][0]
    assert "21,000.00" in html and "Bullish" in html
    assert 'style="' in html  # CSS inlined
    assert "/newsletter/unsubscribe/" in message.body  # plain-text alternative with the link

    stats = issue_stats(issue=issue)
    assert (stats.recipients, stats.sent, stats.skipped, stats.suppressed, stats.failed) == (6, 4, 1, 1, 0)
    assert issue_get(user=staff_author, issue_id=issue.pk).status == IssueStatus.SENT
    assert [a.title for a in archive_list()] == ["Weekly notes"]

    again = issue_deliver(issue_id=issue.pk)
    assert again.sent == 0 and len(mail.outbox) == 4


def test_plan_tier_audience(staff_author, members, market):
    SubscriptionFactory(user=members[3], plan="pro")
    _send(staff_author, audience=Audience.PLANS, audience_plans=["pro"])
    assert [m.to for m in mail.outbox] == [[members[3].email]]


def test_a_free_user_cannot_author(user_a):
    with pytest.raises(DomainError, match="Enterprise"):
        issue_create(user=user_a, title="Hi", body="Hello")


def test_an_enterprise_plan_caps_recipients(enterprise_author, settings, market):
    from billing import plans

    issue = issue_create(user=enterprise_author, title="Desk notes", body="Hello")
    for i in range(3):
        UserFactory(email=f"reader{i}@example.com")
    original = plans.ENTERPRISE.limits
    settings.NEWSLETTER_BATCH_SIZE = 10
    try:
        object.__setattr__(plans.ENTERPRISE, "limits", {**original, "newsletter_recipients": 2})
        with pytest.raises(PlanLimitExceeded, match="allows 2 newsletter recipients per issue"):
            issue_send_now(user=enterprise_author, issue_id=issue.pk, start_worker=False)
    finally:
        object.__setattr__(plans.ENTERPRISE, "limits", original)
    assert issue_get(user=enterprise_author, issue_id=issue.pk).status == IssueStatus.DRAFT
    assert mail.outbox == []
