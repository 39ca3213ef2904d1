"""Celery tasks: start the scheduled issues that are due (beat), and deliver one issue."""

from __future__ import annotations

from celery import shared_task

from newsletter.services import issue_deliver, issues_due_start


@shared_task(name="newsletter.send_due")
def send_due() -> int:
    return issues_due_start()


@shared_task(name="newsletter.deliver")
def deliver(issue_id: int) -> dict:
    return issue_deliver(issue_id=issue_id).__dict__
