"""One newsletter issue to many members, then a send worker killed mid-send and run again.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/nexus REDIS_URL=redis://127.0.0.1:6379/0 \
        .venv/bin/python bench/newsletter.py [--recipients 50000] [--kill-recipients 2000] [--reuse-db]

Uses a database of its own (<name>_bench_newsletter, recreated unless --reuse-db) and a Redis key prefix
of its own.

1. Throughput: one issue (Markdown, no data blocks) to `--recipients` members, sent by the real worker
   (newsletter.services.issue_deliver) in this process through Django's in-memory email backend, with the
   provider throttle set out of the way. Reports the send's wall time and emails a second.
2. Crash: another issue to `--kill-recipients` members, sent by a `manage.py newsletter_send` subprocess
   writing to the idempotent file backend (core/email_backends.py: one file per idempotency key, a repeat
   dropped, as Resend does with its Idempotency-Key header); the bench SIGKILLs it once a third of the
   deliveries are recorded (wherever it is), runs the worker again, and counts the emails in the files per
   recipient: duplicates (a recipient with more than one copy), duplicate_messages (more than one
   Message-ID), missed (a recipient with none), and the repeats the provider dropped (emails the dead worker
   had handed over but not recorded).

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import email
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchenv import bench_environment  # noqa: E402 - bench/ is on the path when a bench runs

ENV = bench_environment(
    "bench_newsletter",
    EMAIL_BACKEND="django.core.mail.backends.locmem.EmailBackend",
    NEWSLETTER_SEND_RATE="1000000",
    NEWSLETTER_SEND_BURST="1000",
    NEWSLETTER_BATCH_SIZE="500",
)
os.environ.update(ENV)

import django  # noqa: E402

django.setup()

from django.core import mail  # noqa: E402
from django.core.management import call_command  # noqa: E402

SEPARATOR = b"\n" + b"-" * 79 + b"\n"
# Stands for a provider honouring idempotency keys (Resend's Idempotency-Key): one file per key, a repeat
# dropped and listed in dropped-repeats.txt.
CRASH_BACKEND = "core.email_backends.IdempotentFileBackend"


def members(prefix: str, count: int) -> None:
    from django.contrib.auth.hashers import make_password

    from accounts.models import User
    from core.rls import system_context

    password = make_password(None)
    with system_context(reason="bench: newsletter members"):
        for start in range(0, count, 5000):
            User.objects.bulk_create(
                [
                    User(email=f"{prefix}{n:06d}@bench.local", password=password)
                    for n in range(start, min(count, start + 5000))
                ]
            )


def author():
    from accounts.models import User
    from core.rls import system_context

    with system_context(reason="bench: the newsletter's author"):
        return User.objects.create(email="editor@bench.local", is_staff=True)


def started_issue(editor, title: str):
    """An issue to every member, frozen and marked sending (the worker not started)."""
    from newsletter.services import issue_create, issue_send_now

    issue = issue_create(user=editor, title=title, body="## This week\n\nMarkets moved; here is how.\n")
    issue_send_now(user=editor, issue_id=issue.pk, start_worker=False)
    return issue


def sent_count(issue_id: int) -> int:
    from core.rls import system_context
    from newsletter.models import Delivery

    with system_context(reason="bench: count deliveries"):
        return Delivery.objects.filter(issue_id=issue_id, state="sent").count()


def throughput(editor, recipients: int) -> dict:
    from newsletter.services import issue_deliver

    members("reader", recipients - 1)  # and the editor
    issue = started_issue(editor, "Throughput")
    started = time.perf_counter()
    report = issue_deliver(issue_id=issue.pk)
    seconds = time.perf_counter() - started
    assert len(mail.outbox) == report.sent
    addresses = Counter(m.to[0] for m in mail.outbox)
    mail.outbox.clear()
    return {
        "recipients": recipients,
        "sent": report.sent,
        "duplicates": sum(c - 1 for c in addresses.values() if c > 1),
        "seconds": round(seconds, 2),
        "emails_per_second": round(report.sent / seconds, 1) if seconds else None,
    }


def worker(issue_id: int, mailbox: Path) -> subprocess.Popen:
    env = {
        **ENV,
        "EMAIL_BACKEND": CRASH_BACKEND,
        "EMAIL_FILE_PATH": str(mailbox),
        "NEWSLETTER_BATCH_SIZE": "100",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "newsletter_send", str(issue_id)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def mailbox_counts(directory: Path) -> tuple[Counter[str], Counter[str]]:
    """Emails per recipient, and distinct Message-IDs per recipient."""
    copies: Counter[str] = Counter()
    ids: dict[str, set[str]] = {}
    found = [
        email.message_from_bytes(chunk.lstrip(b"\n"))
        for path in directory.glob("*.log")
        for chunk in path.read_bytes().split(SEPARATOR)
        if chunk.strip()
    ] + [email.message_from_bytes(path.read_bytes()) for path in directory.glob("*.eml")]
    for message in found:
        copies[message["To"]] += 1
        ids.setdefault(message["To"], set()).add(message["Message-ID"])
    return copies, Counter({to: len(found) for to, found in ids.items()})


def crash(editor, recipients: int) -> dict:
    from accounts.models import User
    from core.rls import system_context

    with system_context(reason="bench: only the crash issue's audience"):
        User.objects.filter(email__startswith="reader").update(is_active=False)
    members("crash", recipients - 1)
    issue = started_issue(editor, "Crash")
    mailbox = Path(tempfile.mkdtemp(prefix="nexus-newsletter-bench-"))

    first = worker(issue.pk, mailbox)
    while sent_count(issue.pk) < recipients // 3:
        if first.poll() is not None:
            sys.exit("the send worker stopped by itself:\n" + first.stderr.read()[-3000:])
        time.sleep(0.01)
    killed_at = sent_count(issue.pk)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()

    started = time.perf_counter()
    second = worker(issue.pk, mailbox)
    out, _ = second.communicate(timeout=600)
    rerun = time.perf_counter() - started
    done = json.loads(out.strip().splitlines()[-1])

    counts, messages = mailbox_counts(mailbox)
    dropped = mailbox / "dropped-repeats.txt"
    expected = {f"crash{n:06d}@bench.local" for n in range(recipients - 1)} | {editor.email}
    return {
        "recipients": recipients,
        "killed_after_sent": killed_at,
        "recovered_claimed_rows": done["recovered"],
        "emails": sum(counts.values()),
        # Emails the dead worker had handed to the provider but not recorded, sent again by the re-run with
        # the same idempotency key and dropped by the provider:
        "provider_dropped_repeats": len(dropped.read_text().split()) if dropped.exists() else 0,
        # Copies in the mailbox beyond one per recipient (same or different Message-ID):
        "duplicates": sum(c - 1 for c in counts.values() if c > 1),
        "duplicate_messages": sum(c - 1 for c in messages.values() if c > 1),
        "missed": len(expected - set(counts)),
        "rerun_seconds": round(rerun, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--kill-recipients", type=int, default=2_000)
    parser.add_argument("--reuse-db", action="store_true", help="Keep the bench database (faster); its rows are emptied.")
    args = parser.parse_args()

    call_command("db_bootstrap", recreate=not args.reuse_db, verbosity=0)
    call_command("migrate", database="owner", verbosity=0, interactive=False)
    from django.db import connections

    with connections["owner"].cursor() as cursor:
        cursor.execute(
            "TRUNCATE accounts_user, newsletter_issue, newsletter_delivery, newsletter_archivedissue, "
            "core_auditlog RESTART IDENTITY CASCADE"
        )
    editor = author()
    result = {"bench": "newsletter", "backend": "locmem"}
    result["send"] = throughput(editor, args.recipients)
    result["crash"] = {"backend": CRASH_BACKEND, **crash(editor, args.kill_recipients)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
