"""Reads: an author's issues and their delivery stats, the public archive, a member's preference."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count, Q, QuerySet

from billing.choices import Feature
from billing.selectors import month_start, plan_limit
from core.errors import DomainError
from core.rls import system_context, tenant
from newsletter.choices import DeliveryState, IssueStatus
from newsletter.models import ArchivedIssue, Delivery, Issue, Preference, Suppression


def may_author(*, user) -> bool:
    """Billing decides: staff, and members whose plan includes newsletter issues (Enterprise)."""
    if user is None or not user.is_authenticated:
        return False
    limit = plan_limit(user=user, feature=Feature.NEWSLETTER_ISSUES)
    return limit is None or limit > 0


def issue_list(*, user) -> QuerySet[Issue]:
    """The author's issues, newest first. Evaluate inside the author's tenant."""
    return Issue.objects.filter(user_id=user.pk).order_by("-created_at", "-id")


def issue_get(*, user, issue_id: int) -> Issue:
    with tenant(user.pk):
        issue = Issue.objects.filter(user_id=user.pk, pk=issue_id).first()
    if issue is None:
        raise DomainError("No such issue.")
    return issue


def issues_created_this_month(*, user, now: datetime) -> int:
    """Billing's counter for Feature.NEWSLETTER_ISSUES (runs as the user)."""
    return Issue.objects.filter(user_id=user.pk, created_at__gte=month_start(now)).count()


@dataclass(frozen=True)
class IssueStats:
    recipients: int
    pending: int
    sending: int
    sent: int
    skipped: int
    suppressed: int
    failed: int

    @property
    def done(self) -> int:
        return self.sent + self.skipped + self.suppressed + self.failed


def issue_stats(*, issue: Issue) -> IssueStats:
    """Deliveries per state; the rows belong to the author, so this reads them in the author's tenant."""
    with tenant(issue.user_id):
        counts = Delivery.objects.filter(issue_id=issue.pk).aggregate(
            recipients=Count("id"),
            **{state: Count("id", filter=Q(state=state)) for state in DeliveryState.values},
        )
    return IssueStats(**counts)


def issues_due(*, now: datetime) -> list[int]:
    """Scheduled issues whose time has come, any author (the beat task's cross-tenant planning)."""
    with system_context(reason="newsletter: scheduled issues due"):
        return list(
            Issue.objects.filter(status=IssueStatus.SCHEDULED, scheduled_at__lte=now)
            .order_by("scheduled_at", "id")
            .values_list("id", flat=True)
        )


def archive_list(*, limit: int | None = None) -> QuerySet[ArchivedIssue]:
    """Sent issues, newest first: shared reference data, readable without signing in."""
    issues = ArchivedIssue.objects.order_by("-sent_at", "-id")
    return issues[:limit] if limit else issues


def archive_get(*, issue_id: int) -> ArchivedIssue | None:
    return ArchivedIssue.objects.filter(issue_id=issue_id).first()


def preference_subscribed(*, user) -> bool:
    with tenant(user.pk):
        preference = Preference.objects.filter(user_id=user.pk).first()
    return preference is None or preference.subscribed


def address_suppressed(*, email: str) -> Suppression | None:
    """Whether the provider reported `email` as bounced or complaining (system-only data)."""
    with system_context(reason="newsletter: is an address suppressed"):
        return Suppression.objects.filter(email=email.strip().lower()).first()
