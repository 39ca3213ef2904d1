"""`manage.py newsletter_send ISSUE_ID`: run the send worker for one issue in the foreground.

The same worker as the `newsletter.deliver` task, for operators (resume a send after a crash without a
Celery worker) and for the crash tests, which kill it mid-send. With --events it prints one JSON line per
claimed batch, per throttle wait and per email the provider accepted (before it is recorded sent)."""

from __future__ import annotations

import json
import sys

from django.core.management.base import BaseCommand

from newsletter.services import issue_deliver


class Command(BaseCommand):
    help = "Send (or resume sending) one newsletter issue in this process."

    def add_arguments(self, parser) -> None:
        parser.add_argument("issue_id", type=int)
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--events", action="store_true", help="Print a JSON line per batch, wait and accepted email.")

    def handle(self, *args, issue_id: int, batch_size: int | None, events: bool, **options) -> None:
        def on_event(kind: str, data: dict) -> None:
            sys.stdout.write(json.dumps({"event": kind, **data}) + "\n")
            sys.stdout.flush()

        report = issue_deliver(issue_id=issue_id, batch_size=batch_size, on_event=on_event if events else None)
        sys.stdout.write(json.dumps({"event": "done", **report.__dict__}) + "\n")
        sys.stdout.flush()
