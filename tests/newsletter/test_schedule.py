"""Scheduling: the beat task starts the issues whose time has come, through the Celery task (eager here);
an issue the author's plan no longer allows goes back to draft with the reason."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from billing.models import Subscription
from config.celery import app as celery_app
from core.errors import DomainError
from core.rls import tenant
from newsletter.choices import IssueStatus
from newsletter.selectors import issue_get
from newsletter.services import issue_create, issue_schedule, issue_unschedule
from newsletter.tasks import send_due


@pytest.fixture
def eager_celery():
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


def test_a_scheduled_issue_is_sent_when_its_time_comes(staff_author, user_a, eager_celery):
    issue = issue_create(user=staff_author, title="Monday notes", body="Good morning.")
    at = timezone.now() + timedelta(hours=2)
    issue_schedule(user=staff_author, issue_id=issue.pk, at=at)

    assert send_due() == 0  # not yet
    assert issue_get(user=staff_author, issue_id=issue.pk).status == IssueStatus.SCHEDULED
    with time_machine.travel(at + timedelta(seconds=30)):
        assert send_due() == 1  # starts the newsletter.deliver task (run eagerly after commit)
    issue = issue_get(user=staff_author, issue_id=issue.pk)
    assert issue.status == IssueStatus.SENT
    assert sorted(m.to[0] for m in mail.outbox) == sorted([staff_author.email, user_a.email])
    assert send_due() == 0


def test_a_time_in_the_past_is_refused_and_a_schedule_can_be_cancelled(staff_author):
    issue = issue_create(user=staff_author, title="Notes", body="Hi.")
    with pytest.raises(DomainError, match="must be in the future"):
        issue_schedule(user=staff_author, issue_id=issue.pk, at=timezone.now() - timedelta(minutes=1))
    issue_schedule(user=staff_author, issue_id=issue.pk, at=timezone.now() + timedelta(days=1))
    assert issue_unschedule(user=staff_author, issue_id=issue.pk).status == IssueStatus.DRAFT


def test_a_plan_that_ended_puts_the_issue_back_to_draft(enterprise_author):
    issue = issue_create(user=enterprise_author, title="Desk notes", body="Hi.")
    at = timezone.now() + timedelta(hours=1)
    issue_schedule(user=enterprise_author, issue_id=issue.pk, at=at)
    with tenant(enterprise_author.pk):  # the subscription ended (as the Stripe webhook would record it)
        Subscription.objects.filter(user=enterprise_author).update(status="canceled")
    with time_machine.travel(at + timedelta(seconds=30)):
        assert send_due() == 0
    issue = issue_get(user=enterprise_author, issue_id=issue.pk)
    assert issue.status == IssueStatus.DRAFT
    assert "Enterprise plan" in issue.problem
    assert mail.outbox == []
