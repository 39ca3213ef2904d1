from __future__ import annotations

import factory
from django.utils import timezone

from newsletter.models import ArchivedIssue, Delivery, Issue, Preference, Suppression
from tests.factories.base import ReferenceFactory, SystemOnlyFactory, TenantFactory, owner


class IssueFactory(TenantFactory):
    """A draft to all members, stored as is (newsletter.services checks the author's plan)."""

    class Meta:
        model = Issue

    title = factory.Sequence(lambda n: f"Weekly market notes #{n}")
    body = "## This week\n\nMarkets moved.\n"


class DeliveryFactory(TenantFactory):
    """A pending delivery of the author's issue to another member."""

    class Meta:
        model = Delivery

    issue = factory.SubFactory(IssueFactory, user=owner())
    recipient = factory.SubFactory("tests.factories.accounts.UserFactory")
    email = factory.SelfAttribute("recipient.email")


class PreferenceFactory(TenantFactory):
    class Meta:
        model = Preference

    subscribed = False


class SuppressionFactory(SystemOnlyFactory):
    class Meta:
        model = Suppression

    email = factory.Sequence(lambda n: f"bounced{n}@example.com")
    reason = "bounced"


class ArchivedIssueFactory(ReferenceFactory):
    """The archive copy of a sent issue (the send worker writes it in the system context)."""

    class Meta:
        model = ArchivedIssue

    issue_id = factory.LazyFunction(lambda: IssueFactory(status="sent").pk)
    title = "Weekly market notes"
    slug = "weekly-market-notes"
    author_name = "Nexus"
    summary = "Markets moved."
    html_body = "<h2>This week</h2><p>Markets moved.</p>"
    text_body = "This week\n\nMarkets moved."
    sent_at = factory.LazyFunction(timezone.now)
