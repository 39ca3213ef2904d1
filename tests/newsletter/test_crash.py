"""A send worker killed mid-send (a real process, SIGKILL), then run again: every recipient has exactly
one email in the mailbox (Django's file backend, or the idempotent file backend standing for a provider
that honours idempotency keys), no one twice and no one missed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from core.rls import system_context
from newsletter.choices import DeliveryState, IssueStatus
from newsletter.models import Delivery, Issue
from newsletter.services import issue_create, issue_send_now
from tests.factories import UserFactory
from tests.newsletter.mailbox import dropped, messages, per_recipient

MEMBERS = 60
KILL_AFTER_SENT = 15


def _worker(
    issue_id: int, mailbox: Path, *, rate: int = 50, burst: int = 5,
    backend: str = "django.core.mail.backends.filebased.EmailBackend", record_every: int = 50, batch: int = 10,
) -> subprocess.Popen:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "EMAIL_BACKEND": backend,
        "EMAIL_FILE_PATH": str(mailbox),
        # Slow enough that the worker waits for the provider between chunks of 5.
        "NEWSLETTER_SEND_RATE": str(rate),
        "NEWSLETTER_SEND_BURST": str(burst),
        "NEWSLETTER_RECORD_EVERY": str(record_every),
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "newsletter_send", str(issue_id), "--batch-size", str(batch), "--events"],
        cwd=settings.BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )


def _events(process: subprocess.Popen):
    for line in process.stdout:
        try:
            yield json.loads(line)
        except ValueError:
            continue  # a log line


def _states(issue_id: int) -> dict[str, int]:
    with system_context(reason="tests: delivery states"):
        rows = Delivery.objects.filter(issue_id=issue_id).values_list("state", flat=True)
        counts: dict[str, int] = {}
        for state in rows:
            counts[state] = counts.get(state, 0) + 1
        return counts


def test_a_killed_worker_then_a_rerun_emails_everyone_exactly_once(staff_author, tmp_path):
    for i in range(MEMBERS):
        UserFactory(email=f"reader{i:03d}@example.com")
    issue = issue_create(user=staff_author, title="Crash-safe issue", body="Hello **members**.")
    issue_send_now(user=staff_author, issue_id=issue.pk, start_worker=False)

    first = _worker(issue.pk, tmp_path)
    killed_during = None
    for event in _events(first):
        if event["event"] == "throttle_wait" and event["sent"] >= KILL_AFTER_SENT:
            os.kill(first.pid, signal.SIGKILL)
            killed_during = event
            break
    first.wait(timeout=60)
    assert killed_during is not None and first.returncode == -signal.SIGKILL

    states = _states(issue.pk)
    assert states.get(DeliveryState.SENT, 0) >= KILL_AFTER_SENT
    assert states.get(DeliveryState.SENDING, 0) > 0  # the dead worker's claimed, unsent rows
    assert sum(per_recipient(tmp_path).values()) == states[DeliveryState.SENT]

    second = _worker(issue.pk, tmp_path)
    done = [e for e in _events(second) if e["event"] == "done"]
    second.wait(timeout=120)
    assert second.returncode == 0
    assert done[0]["recovered"] > 0 and done[0]["finished"] is True

    counts = per_recipient(tmp_path)
    everyone = {f"reader{i:03d}@example.com" for i in range(MEMBERS)} | {staff_author.email}
    assert set(counts) == everyone
    assert set(counts.values()) == {1}
    assert len({m["Message-ID"] for m in messages(tmp_path)}) == len(everyone)
    assert _states(issue.pk) == {DeliveryState.SENT: len(everyone)}
    with system_context(reason="tests: issue status"):
        assert Issue.objects.get(pk=issue.pk).status == IssueStatus.SENT


def test_a_worker_killed_after_the_provider_accepted_emails_it_had_not_recorded_sends_none_twice(
    staff_author, tmp_path
):
    """The window a crash cannot close on our side: emails handed to the provider, the worker dead before
    recording them. The re-run sends them again with the same idempotency key and the provider (here the
    idempotent file backend, as Resend does with Idempotency-Key) drops the repeats."""
    for i in range(MEMBERS):
        UserFactory(email=f"reader{i:03d}@example.com")
    issue = issue_create(user=staff_author, title="Accepted, not recorded", body="Hello.")
    issue_send_now(user=staff_author, issue_id=issue.pk, start_worker=False)
    idempotent = "core.email_backends.IdempotentFileBackend"

    # One batch of everyone, one throttle burst, recorded only at the end of the burst: the kill on the
    # first accepted email lands while the provider holds emails the database has not recorded.
    first = _worker(issue.pk, tmp_path, rate=1000, burst=100, backend=idempotent, record_every=1000, batch=100)
    for event in _events(first):
        if event["event"] == "accepted":
            os.kill(first.pid, signal.SIGKILL)
            break
    first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL
    handed_over = len(messages(tmp_path))
    assert handed_over >= 1 and DeliveryState.SENT not in _states(issue.pk)  # none recorded

    rerun = _worker(issue.pk, tmp_path, rate=1000, burst=100, backend=idempotent, batch=100)
    rerun.communicate(timeout=120)
    assert rerun.returncode == 0

    counts = per_recipient(tmp_path)
    everyone = {f"reader{i:03d}@example.com" for i in range(MEMBERS)} | {staff_author.email}
    assert set(counts) == everyone and set(counts.values()) == {1}
    assert len(dropped(tmp_path)) == handed_over  # every email sent twice reached the mailbox once
    assert _states(issue.pk) == {DeliveryState.SENT: len(everyone)}


def test_two_workers_at_once_share_the_issue_and_email_everyone_once(staff_author, tmp_path):
    for i in range(MEMBERS):
        UserFactory(email=f"reader{i:03d}@example.com")
    issue = issue_create(user=staff_author, title="Two workers", body="Hello.")
    issue_send_now(user=staff_author, issue_id=issue.pk, start_worker=False)

    # 20 a second between them (the bucket is shared): about 3 s of sending, so both are running.
    workers = [_worker(issue.pk, tmp_path, rate=20), _worker(issue.pk, tmp_path, rate=20)]
    reports = [next(e for e in _events(w) if e["event"] == "done") for w in workers]
    for w in workers:
        assert w.wait(timeout=120) == 0

    counts = per_recipient(tmp_path)
    assert len(counts) == MEMBERS + 1 and set(counts.values()) == {1}
    assert sum(r["sent"] for r in reports) == MEMBERS + 1
    assert all(r["sent"] > 0 for r in reports)  # both took batches: the claims never overlapped
    assert [r["finished"] for r in reports].count(True) == 1  # one of them archived the issue
