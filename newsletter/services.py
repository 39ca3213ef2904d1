"""Writes: compose, schedule and send issues; the send worker; unsubscribes and suppressions.

Sending, exactly once per (issue, recipient):

1. `issue_send_now` / `issues_due_start` (beat) check the author's entitlements, freeze the rendered issue
   (every recipient and the archive get the same figures), mark it `sending` and start the
   `newsletter.deliver` task.
2. `issue_deliver` (the task, or `manage.py newsletter_send`) first writes one Delivery row per recipient
   in one transaction (the unique (issue, recipient) constraint makes a second run add no one twice), then
   claims batches: `UPDATE ... WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED) RETURNING`, committed, with
   the claim's key held as a session advisory lock by the claiming worker. Two workers never claim the same
   row; each row goes pending -> sending -> sent (or skipped, suppressed, failed); the emails the provider
   accepted are recorded sent together, one commit per `NEWSLETTER_RECORD_EVERY` emails (50).
3. A worker that dies loses its session, so its advisory lock is released at once: the next run (or any
   other worker) finds the claim's rows still `sending`, takes the lock (proving the owner is gone) and puts
   them back to `pending`. The emails a dead worker had handed to the provider but not yet recorded (at
   most `NEWSLETTER_RECORD_EVERY`) are sent again with the same Message-ID
   (newsletter.<issue>.<recipient>@<domain>) and the same idempotency key (newsletter/<issue>/<recipient>),
   which the provider uses to drop the repeat (core/email_backends.py: Resend's `Idempotency-Key`, 24 hours;
   the idempotent file backend). Through a provider without idempotency (plain SMTP) those few can arrive
   twice.
4. The provider's rate is a token bucket in Redis (newsletter/throttle.py) shared by all workers.
5. When no row is pending or sending, one worker wins `sending -> sent`, writes the archive copy and posts
   to the Discord channel when asked.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from email.mime.image import MIMEImage
from email.utils import parseaddr
from typing import Any
from urllib.parse import urlsplit

import structlog
from django.conf import settings
from django.core import signing
from django.core.mail import EmailMultiAlternatives, get_connection
from django.db import connection, transaction
from django.urls import reverse
from django.utils import timezone
from django.utils.text import slugify

from accounts.selectors import account_exists, member_contacts
from billing.choices import Feature, PlanCode
from billing.plans import plan_get
from billing.selectors import user_ids_on_plans
from billing.services import entitlement_check
from bot.discord.notify import discord_request
from core.audit import audit_record
from core.errors import DomainError
from core.jobs import task_enqueue
from core.notifications import DeliveryFailed, DeliveryRefused, absolute_url
from core.rls import system_context, tenant
from newsletter.blocks import body_split
from newsletter.choices import (
    EDITABLE_STATUSES,
    Audience,
    DeliveryState,
    DiscordStatus,
    IssueStatus,
    SuppressionReason,
)
from newsletter.models import ArchivedIssue, Delivery, Issue, Preference, Suppression
from newsletter.rendering import (
    UNSUBSCRIBE_PLACEHOLDER,
    RenderedBody,
    body_render,
    email_document,
    email_text,
    html_for_email,
    html_for_web,
)
from newsletter.selectors import issues_due, may_author
from newsletter.throttle import TokenBucket, provider_bucket

logger = structlog.get_logger(__name__)

TITLE_MAX = 200
BODY_MAX = 50_000
UNSUBSCRIBE_SALT = "newsletter.unsubscribe"
MATERIALIZE_CHUNK = 5000
DETAIL_MAX = 300


# --- authoring -----------------------------------------------------------------------------------------


def author_require(*, user) -> None:
    if not may_author(user=user):
        raise DomainError(
            "Newsletters are part of the Enterprise plan: upgrade on the billing page to write one."
        )


@dataclass(frozen=True)
class IssueInput:
    title: str
    body: str
    audience: str
    audience_plans: list[str]
    post_to_discord: bool


def _clean(
    *, title: str, body: str, audience: str, audience_plans: list[str] | None, post_to_discord: bool
) -> IssueInput:
    title = (title or "").strip()
    if not title:
        raise DomainError("Give the issue a title.", field="title")
    if len(title) > TITLE_MAX:
        raise DomainError(f"Keep the title under {TITLE_MAX} characters.", field="title")
    body = (body or "").replace("\r\n", "\n")
    if not body.strip():
        raise DomainError("Write the issue.", field="body")
    if len(body) > BODY_MAX:
        raise DomainError(f"An issue is at most {BODY_MAX:,} characters.", field="body")
    body_split(body)  # an unknown block or bad block arguments: a field error now, not at send time
    if audience not in Audience.values:
        raise DomainError("Choose who receives the issue.", field="audience")
    plans = sorted(set(audience_plans or []))
    if audience == Audience.PLANS:
        unknown = [p for p in plans if p not in PlanCode.values]
        if unknown or not plans:
            raise DomainError("Choose at least one plan.", field="audience_plans")
    else:
        plans = []
    if audience == Audience.NONE and not post_to_discord:
        raise DomainError("Send it by email, post it to Discord, or both.", field="audience")
    return IssueInput(
        title=title, body=body, audience=audience, audience_plans=plans, post_to_discord=bool(post_to_discord)
    )


def issue_create(
    *,
    user,
    title: str,
    body: str,
    audience: str = Audience.ALL,
    audience_plans: list[str] | None = None,
    post_to_discord: bool = False,
) -> Issue:
    author_require(user=user)
    values = _clean(
        title=title, body=body, audience=audience, audience_plans=audience_plans, post_to_discord=post_to_discord
    )
    with tenant(user.pk):
        entitlement_check(user=user, feature=Feature.NEWSLETTER_ISSUES)
        return Issue.objects.create(user=user, **values.__dict__)


def _locked(*, user, issue_id: int) -> Issue:
    issue = Issue.objects.select_for_update().filter(user_id=user.pk, pk=issue_id).first()
    if issue is None:
        raise DomainError("No such issue.")
    return issue


def issue_update(
    *,
    user,
    issue_id: int,
    title: str,
    body: str,
    audience: str,
    audience_plans: list[str] | None = None,
    post_to_discord: bool = False,
) -> Issue:
    author_require(user=user)
    values = _clean(
        title=title, body=body, audience=audience, audience_plans=audience_plans, post_to_discord=post_to_discord
    )
    with tenant(user.pk):
        issue = _locked(user=user, issue_id=issue_id)
        if issue.status not in EDITABLE_STATUSES:
            raise DomainError("A sent issue cannot be changed.")
        for name, value in values.__dict__.items():
            setattr(issue, name, value)
        issue.save()
        return issue


def issue_delete(*, user, issue_id: int) -> None:
    with tenant(user.pk):
        issue = _locked(user=user, issue_id=issue_id)
        if issue.status not in EDITABLE_STATUSES:
            raise DomainError("A sent issue stays in the archive; it cannot be deleted.")
        issue.delete()


def issue_schedule(*, user, issue_id: int, at: datetime, now: datetime | None = None) -> Issue:
    author_require(user=user)
    now = now or timezone.now()
    if at is None or timezone.is_naive(at):
        raise DomainError("Choose a date and time (UTC).", field="scheduled_at")
    if at <= now:
        raise DomainError("The time must be in the future; use Send now to send at once.", field="scheduled_at")
    with tenant(user.pk):
        issue = _locked(user=user, issue_id=issue_id)
        if issue.status not in EDITABLE_STATUSES:
            raise DomainError("This issue has already been sent.")
        _recipients_allowed(issue=issue, author=user)
        issue.status, issue.scheduled_at, issue.problem = IssueStatus.SCHEDULED, at, ""
        issue.save(update_fields=["status", "scheduled_at", "problem", "updated_at"])
        return issue


def issue_unschedule(*, user, issue_id: int) -> Issue:
    with tenant(user.pk):
        issue = _locked(user=user, issue_id=issue_id)
        if issue.status != IssueStatus.SCHEDULED:
            raise DomainError("This issue is not scheduled.")
        issue.status, issue.scheduled_at = IssueStatus.DRAFT, None
        issue.save(update_fields=["status", "scheduled_at", "updated_at"])
        return issue


# --- rendering -----------------------------------------------------------------------------------------


def archive_path(issue: Issue) -> str:
    return reverse("newsletter:archive_issue", args=[issue.pk, slugify(issue.title)[:80] or "issue"])


def unsubscribe_token(*, user_id: int, email: str) -> str:
    return signing.dumps({"u": int(user_id), "e": email.lower()}, salt=UNSUBSCRIBE_SALT, compress=True)


def unsubscribe_url(*, user_id: int, email: str) -> str:
    return absolute_url(reverse("newsletter:unsubscribe", args=[unsubscribe_token(user_id=user_id, email=email)]))


@dataclass(frozen=True)
class IssuePreview:
    web_html: str
    email_html: str
    text: str
    data: list[dict[str, Any]]


def _paying_readers(issue: Issue) -> bool:
    """Every recipient is on a paid plan (research notes for paying members may be shown in full)."""
    return issue.audience == Audience.PLANS and bool(issue.audience_plans) and all(
        plan_get(code).is_paid for code in issue.audience_plans
    )


def _web_html(rendered: RenderedBody) -> str:
    html = html_for_web(rendered.html)
    for cid, png in rendered.images.items():
        html = html.replace(f"cid:{cid}", f"data:image/png;base64,{png}")
    return html


def issue_preview(*, user, issue: Issue) -> IssuePreview:
    """The issue as a recipient (here the author) would get it now, figures looked up now."""
    rendered = body_render(user=user, body=issue.body, email=True, paying_readers=_paying_readers(issue))
    web = _web_html(rendered)
    archive = absolute_url(archive_path(issue))
    own_link = unsubscribe_url(user_id=user.pk, email=user.email)
    # The browser shows the email with the charts inline (data: URLs, as a mail client shows cid: parts).
    inline_charts = html_for_email(rendered.html)
    for cid, png in rendered.images.items():
        inline_charts = inline_charts.replace(f"cid:{cid}", f"data:image/png;base64,{png}")
    email_html = email_document(title=issue.title, body_html=inline_charts, archive_url=archive).replace(
        UNSUBSCRIBE_PLACEHOLDER, own_link
    )
    text = email_text(title=issue.title, body_text=rendered.text, archive_url=archive).replace(
        UNSUBSCRIBE_PLACEHOLDER, own_link
    )
    return IssuePreview(web_html=web, email_html=email_html, text=text, data=rendered.data)


# --- starting a send -----------------------------------------------------------------------------------


def _audience(*, issue: Issue, joined_before: datetime | None) -> list[tuple[int, str]]:
    """(user id, email) of every recipient; call inside system_context."""
    if issue.audience == Audience.NONE:
        return []
    members: list[tuple[int, str]] = list(member_contacts(joined_before=joined_before))
    if issue.audience == Audience.PLANS:
        chosen = user_ids_on_plans(plan_codes=issue.audience_plans, user_ids=[m[0] for m in members])
        members = [m for m in members if m[0] in chosen]
    return members


def _recipients_allowed(*, issue: Issue, author) -> int:
    with system_context(reason="newsletter: count an issue's audience"):
        count = len(_audience(issue=issue, joined_before=None))
    entitlement_check(user=author, feature=Feature.NEWSLETTER_RECIPIENTS, increment=count)
    return count


def _send_start(*, author, issue_id: int, now: datetime, start_worker: bool = True) -> Issue:
    """Check, freeze and mark the issue `sending`; the task starts after commit. Runs as the author.

    start_worker=False: the caller runs `issue_deliver` itself (the demo seed, the benchmark)."""
    with tenant(author.pk):
        issue = _locked(user=author, issue_id=issue_id)
        if issue.status not in EDITABLE_STATUSES:
            raise DomainError("This issue has already been sent.")
        count = _recipients_allowed(issue=issue, author=author)
        rendered = body_render(user=author, body=issue.body, email=True, paying_readers=_paying_readers(issue))
        archive = absolute_url(archive_path(issue))
        issue.html_body = _web_html(rendered)
        issue.email_html = email_document(
            title=issue.title, body_html=html_for_email(rendered.html), archive_url=archive
        )
        issue.text_body = email_text(title=issue.title, body_text=rendered.text, archive_url=archive)
        issue.inline_images = rendered.images
        issue.status, issue.send_started_at, issue.problem = IssueStatus.SENDING, now, ""
        issue.recipient_count = count
        issue.save()
        audit_record(
            action="newsletter.send",
            user=author,
            actor=author,
            target=issue,
            after={"audience": issue.audience, "plans": issue.audience_plans, "recipients": count},
        )
        if start_worker:
            transaction.on_commit(lambda: task_enqueue("newsletter.deliver", args=[issue.pk]))
        return issue


def issue_send_now(
    *, user, issue_id: int, now: datetime | None = None, start_worker: bool = True
) -> Issue:
    author_require(user=user)
    return _send_start(author=user, issue_id=issue_id, now=now or timezone.now(), start_worker=start_worker)


def issues_due_start(*, now: datetime | None = None) -> int:
    """Start every scheduled issue whose time has come (the beat task). A plan that no longer allows it
    puts the issue back to draft with the reason, shown on the issue's page."""
    now = now or timezone.now()
    started = 0
    for issue_id in issues_due(now=now):
        with system_context(reason="newsletter: the author of a scheduled issue"):
            issue = Issue.objects.select_related("user").get(pk=issue_id)
        author = issue.user
        try:
            author_require(user=author)
            _send_start(author=author, issue_id=issue_id, now=now)
            started += 1
        except DomainError as exc:
            with tenant(author.pk):
                Issue.objects.filter(pk=issue_id, status=IssueStatus.SCHEDULED).update(
                    status=IssueStatus.DRAFT, scheduled_at=None, problem=str(exc)[:1000]
                )
            logger.info("newsletter.schedule_refused", issue_id=issue_id, reason=str(exc))
    return started


# --- the send worker -----------------------------------------------------------------------------------


@dataclass
class DeliverReport:
    issue_id: int
    sent: int = 0
    skipped: int = 0
    suppressed: int = 0
    failed: int = 0
    recovered: int = 0
    finished: bool = False


Event = Callable[[str, dict[str, Any]], None]


def _recipients_materialize(*, issue_id: int) -> Issue | None:
    """One Delivery row per recipient, once; None when the issue is not being sent."""
    with system_context(reason="newsletter: write an issue's recipients"):
        issue = Issue.objects.select_for_update().get(pk=issue_id)
        if issue.status != IssueStatus.SENDING:
            return None
        if issue.recipients_ready:
            return issue
        members = _audience(issue=issue, joined_before=issue.send_started_at)
        for start in range(0, len(members), MATERIALIZE_CHUNK):
            Delivery.objects.bulk_create(
                [
                    Delivery(user_id=issue.user_id, issue_id=issue.pk, recipient_id=user_id, email=email)
                    for user_id, email in members[start : start + MATERIALIZE_CHUNK]
                ],
                ignore_conflicts=True,
            )
        issue.recipients_ready = True
        issue.recipient_count = len(members)
        issue.save(update_fields=["recipients_ready", "recipient_count"])
        return issue


def _lock(key: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", [key])


def _advisory(sql: str, key: int) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(sql, [key])
        return bool(cursor.fetchone()[0])


def _claims_recover(*, issue_id: int) -> int:
    """Put back to pending the rows of claims whose worker is gone (its advisory lock is free)."""
    recovered = 0
    with system_context(reason="newsletter: recover a dead worker's claims"):
        claims = list(
            Delivery.objects.filter(issue_id=issue_id, state=DeliveryState.SENDING)
            .order_by()  # no model ordering in the DISTINCT
            .values_list("claim", flat=True)
            .distinct()
        )
        for claim in claims:
            if claim is None or not _advisory("SELECT pg_try_advisory_lock(%s)", claim):
                continue
            try:
                recovered += Delivery.objects.filter(
                    issue_id=issue_id, claim=claim, state=DeliveryState.SENDING
                ).update(state=DeliveryState.PENDING, claim=None, claimed_at=None)
            finally:
                _advisory("SELECT pg_advisory_unlock(%s)", claim)
    return recovered


def _claim(*, issue_id: int, size: int) -> tuple[int, list[tuple[int, int, str]]]:
    """Claim up to `size` pending rows; returns the claim key (its advisory lock held) and the rows."""
    key = secrets.randbits(62) + 1
    with system_context(reason="newsletter: claim a batch of deliveries"):
        _lock(key)
        with connection.cursor() as cursor:
            cursor.execute(
                """
                UPDATE newsletter_delivery SET state = %s, claim = %s, claimed_at = now()
                 WHERE id IN (SELECT id FROM newsletter_delivery
                               WHERE issue_id = %s AND state = %s
                               ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED)
                RETURNING id, recipient_id, email
                """,
                [DeliveryState.SENDING, key, issue_id, DeliveryState.PENDING, size],
            )
            rows = sorted(cursor.fetchall())
    if not rows:
        _release(key)
    return key, rows


def _release(key: int) -> None:
    with system_context(reason="newsletter: release a claim"):
        _advisory("SELECT pg_advisory_unlock(%s)", key)


def _mark(*, ids: list[int], state: str, detail: str = "", sent_at: datetime | None = None) -> None:
    if not ids:
        return
    with system_context(reason="newsletter: record deliveries"):
        Delivery.objects.filter(id__in=ids, state=DeliveryState.SENDING).update(
            state=state, detail=detail[:DETAIL_MAX], sent_at=sent_at, claim=None
        )


def _filtered(rows: list[tuple[int, int, str]]) -> tuple[list[tuple[int, int, str]], list[int], list[int]]:
    """(rows to send, ids of unsubscribed recipients, ids of suppressed addresses)."""
    with system_context(reason="newsletter: preferences and suppressions of a batch"):
        unsubscribed = set(
            Preference.objects.filter(user_id__in=[r[1] for r in rows], subscribed=False).values_list(
                "user_id", flat=True
            )
        )
        suppressed = set(
            Suppression.objects.filter(email__in=[r[2].lower() for r in rows]).values_list("email", flat=True)
        )
    send, skip, suppress = [], [], []
    for row in rows:
        if row[1] in unsubscribed:
            skip.append(row[0])
        elif row[2].lower() in suppressed:
            suppress.append(row[0])
        else:
            send.append(row)
    return send, skip, suppress


def _domain() -> str:
    address = parseaddr(settings.NEWSLETTER_FROM_EMAIL)[1]
    return address.rpartition("@")[2] or urlsplit(settings.SITE_URL).hostname or "nexus.local"


def newsletter_message(*, issue: Issue, recipient_id: int, email: str, mail=None) -> EmailMultiAlternatives:
    """One recipient's email: the frozen issue with their own unsubscribe link and headers."""
    link = unsubscribe_url(user_id=recipient_id, email=email)
    list_unsubscribe = f"<{link}>"
    if settings.NEWSLETTER_UNSUBSCRIBE_MAILTO:
        list_unsubscribe += f", <mailto:{settings.NEWSLETTER_UNSUBSCRIBE_MAILTO}?subject=unsubscribe>"
    domain = _domain()
    message = EmailMultiAlternatives(
        subject=issue.title,
        body=issue.text_body.replace(UNSUBSCRIBE_PLACEHOLDER, link),
        from_email=settings.NEWSLETTER_FROM_EMAIL,
        to=[email],
        connection=mail,
        headers={
            "List-Unsubscribe": list_unsubscribe,
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": f"Nexus newsletter <newsletter.{domain}>",
            "Message-ID": f"<newsletter.{issue.pk}.{recipient_id}@{domain}>",
            "X-Nexus-Newsletter": str(issue.pk),
        },
    )
    # The provider drops a repeat of this key (core/email_backends.py): the re-send after a crash.
    message.idempotency_key = f"newsletter/{issue.pk}/{recipient_id}"  # type: ignore[attr-defined]
    message.attach_alternative(issue.email_html.replace(UNSUBSCRIBE_PLACEHOLDER, link), "text/html")
    for cid, png in (issue.inline_images or {}).items():
        image = MIMEImage(base64.b64decode(png), "png")
        image.add_header("Content-ID", f"<{cid}>")
        image.add_header("Content-Disposition", "inline", filename=f"{cid.partition('@')[0]}.png")
        message.attach(image)
    return message


def _send_batch(
    *, issue: Issue, rows: list[tuple[int, int, str]], bucket: TokenBucket, report: DeliverReport,
    clock: Callable[[], float], sleep: Callable[[float], None], on_event: Event | None,
) -> None:
    send, skip, suppress = _filtered(rows)
    _mark(ids=skip, state=DeliveryState.SKIPPED, detail="Unsubscribed")
    _mark(ids=suppress, state=DeliveryState.SUPPRESSED, detail="Address suppressed (bounce or complaint)")
    report.skipped += len(skip)
    report.suppressed += len(suppress)

    def waiting(seconds: float) -> None:
        if on_event is not None:
            on_event("throttle_wait", {"seconds": round(seconds, 3), "sent": report.sent})

    mail = get_connection()
    mail.open()
    accepted: list[int] = []

    def record() -> None:
        _mark(ids=accepted, state=DeliveryState.SENT, sent_at=timezone.now())
        report.sent += len(accepted)
        accepted.clear()

    try:
        for start in range(0, len(send), bucket.burst):
            chunk = send[start : start + bucket.burst]
            bucket.wait_for(len(chunk), clock=clock, sleep=sleep, on_wait=waiting)
            for delivery_id, recipient_id, email in chunk:
                try:
                    message = newsletter_message(
                        issue=issue, recipient_id=recipient_id, email=email, mail=mail
                    )
                    message.send()
                except Exception as exc:  # the provider refused this one: recorded, the others go on
                    logger.warning("newsletter.send_failed", issue_id=issue.pk, delivery_id=delivery_id)
                    _mark(ids=[delivery_id], state=DeliveryState.FAILED, detail=f"{exc.__class__.__name__}: {exc}")
                    report.failed += 1
                    continue
                accepted.append(delivery_id)
                if on_event is not None:
                    on_event("accepted", {"sent": report.sent, "unrecorded": len(accepted)})
                if len(accepted) >= settings.NEWSLETTER_RECORD_EVERY:
                    record()
            record()
    finally:
        mail.close()


def issue_deliver(
    *,
    issue_id: int,
    batch_size: int | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
    on_event: Event | None = None,
) -> DeliverReport:
    """Send the issue to every recipient who has not had it; safe to run again, and in several workers."""
    report = DeliverReport(issue_id=issue_id)
    issue = _recipients_materialize(issue_id=issue_id)
    if issue is None:
        return report
    bucket = provider_bucket()
    size = batch_size or settings.NEWSLETTER_BATCH_SIZE
    report.recovered = _claims_recover(issue_id=issue_id)
    while True:
        key, rows = _claim(issue_id=issue_id, size=size)
        if not rows:
            break
        if on_event is not None:
            on_event("claimed", {"rows": len(rows), "sent": report.sent})
        try:
            _send_batch(
                issue=issue, rows=rows, bucket=bucket, report=report, clock=clock, sleep=sleep, on_event=on_event
            )
        finally:
            _release(key)
        report.recovered += _claims_recover(issue_id=issue_id)
    report.finished = _finish(issue_id=issue_id)
    logger.info("newsletter.delivered", **report.__dict__)
    return report


def _finish(*, issue_id: int) -> bool:
    """`sending -> sent` once nothing is pending or in flight; the winner archives and posts to Discord."""
    with system_context(reason="newsletter: finish an issue"):
        open_rows = Delivery.objects.filter(
            issue_id=issue_id, state__in=[DeliveryState.PENDING, DeliveryState.SENDING]
        ).exists()
        if open_rows:
            return False
        now = timezone.now()
        won = Issue.objects.filter(pk=issue_id, status=IssueStatus.SENDING).update(
            status=IssueStatus.SENT, sent_at=now
        )
        if not won:
            return False
        issue = Issue.objects.select_related("user").get(pk=issue_id)
        ArchivedIssue.objects.update_or_create(
            issue_id=issue.pk,
            defaults={
                "title": issue.title,
                "slug": slugify(issue.title)[:80] or "issue",
                # Staff write as the house; a member's issue carries their name.
                "author_name": "Nexus" if issue.user.is_staff else issue.user.label,
                "summary": _summary(issue.text_body),
                "html_body": issue.html_body,
                "text_body": issue.text_body,
                "sent_at": now,
            },
        )
    if issue.post_to_discord:
        _discord_post(issue=issue)
    return True


def _summary(text: str) -> str:
    lines = [line.strip() for line in text.splitlines()[2:] if line.strip() and not line.startswith(("#", "="))]
    summary = " ".join(lines)
    return summary[:297] + "..." if len(summary) > 300 else summary


def _discord_post(*, issue: Issue) -> None:
    """Post the issue's title, summary and archive link to the configured channel, recording the outcome."""
    channel = settings.NEWSLETTER_DISCORD_CHANNEL_ID
    if not settings.DISCORD_BOT_TOKEN:
        status, detail = DiscordStatus.SKIPPED, "Not posted: the Discord bot is not configured (DISCORD_BOT_TOKEN)."
    elif not channel:
        status, detail = DiscordStatus.SKIPPED, "Not posted: no channel configured (NEWSLETTER_DISCORD_CHANNEL_ID)."
    else:
        embed = {
            "title": issue.title[:256],
            "description": _summary(issue.text_body)[:4096],
            "url": absolute_url(archive_path(issue)),
            "color": 0x2563EB,
            "footer": {"text": "Nexus newsletter"},
        }
        try:
            posted = discord_request("POST", f"/channels/{channel}/messages", json={"embeds": [embed]})
            status, detail = DiscordStatus.POSTED, f"Posted to channel {channel} (message {posted.get('id', '?')})."
        except (DeliveryFailed, DeliveryRefused) as exc:
            status, detail = DiscordStatus.FAILED, f"Discord: {exc}"
    with tenant(issue.user_id):
        Issue.objects.filter(pk=issue.pk).update(discord_status=status, discord_detail=detail[:DETAIL_MAX])
    logger.info("newsletter.discord", issue_id=issue.pk, status=status, detail=detail)


# --- members: unsubscribe and preferences ----------------------------------------------------------------


def unsubscribe_token_read(*, token: str) -> tuple[int, str]:
    """(user id, email) of a signed unsubscribe token; DomainError when it was altered."""
    try:
        data = signing.loads(token, salt=UNSUBSCRIBE_SALT)
        return int(data["u"]), str(data["e"])
    except (signing.BadSignature, KeyError, TypeError, ValueError):
        raise DomainError("This unsubscribe link is not valid. Sign in to change your newsletter settings.") from None


def preference_set(*, user_id: int, subscribed: bool) -> None:
    """Record a member's choice; an account deleted since the link was sent has nothing left to change."""
    with tenant(user_id):
        if not account_exists(user_id=user_id):
            logger.info("newsletter.preference_for_deleted_account", user_id=user_id)
            return
        Preference.objects.update_or_create(user_id=user_id, defaults={"subscribed": subscribed})


def unsubscribe_by_token(*, token: str) -> str:
    """Unsubscribe the member a signed link names (no sign-in needed); returns their address."""
    user_id, email = unsubscribe_token_read(token=token)
    preference_set(user_id=user_id, subscribed=False)
    logger.info("newsletter.unsubscribed", user_id=user_id)
    return email


# --- the provider's tracking webhooks ----------------------------------------------------------------------


SUPPRESSING_EVENTS = {
    "bounced": SuppressionReason.BOUNCED,
    "complained": SuppressionReason.COMPLAINED,
    "rejected": SuppressionReason.REJECTED,
}


def suppression_record(*, email: str, event_type: str, detail: str = "", event_id: str = "") -> Suppression | None:
    """Suppress an address the provider reported (bounce, complaint, rejection); other events are ignored."""
    reason = SUPPRESSING_EVENTS.get(event_type)
    if reason is None or not email:
        return None
    with system_context(reason=f"newsletter: provider reported {event_type}"):
        suppression, created = Suppression.objects.get_or_create(
            email=email.strip().lower(),
            defaults={"reason": reason, "detail": (detail or "")[:DETAIL_MAX], "event_id": event_id[:200]},
        )
    if created:
        logger.info("newsletter.suppressed", reason=reason, event_id=event_id)
    return suppression


def tracking_event_handle(*, event) -> Suppression | None:
    """anymail's normalized tracking event (anymail.signals.tracking) -> a suppression when it is one."""
    return suppression_record(
        email=event.recipient or "",
        event_type=event.event_type,
        detail=event.description or event.mta_response or str(event.reject_reason or ""),
        event_id=event.event_id or "",
    )

