"""Notifications: the one way any app tells a user something, over every channel the user allows.

    notify(user=trader, kind="order.filled", message="Bought 0.5 BTC at 64,210", link="/orders/42/",
           dedup_key="order-filled:42")

writes the in-app `Notification` (the notification centre) and one `NotificationDelivery` per channel the
user has enabled for that kind, in the caller's transaction. After that transaction commits each delivery
is sent: inline channels (the in-app toast, which must arrive within milliseconds) from the committing
process, the others by the Celery task `core.notifications.deliver` with retries.

Exactly once, enforced by the database rather than by `if`s:
- `dedup_key`: one notification per (user, key) (a unique constraint), so a retried caller notifies once;
- one delivery row per (notification, channel) (a unique constraint);
- a delivery is sent only by whoever moves it from pending to sending (a conditional UPDATE), so two
  workers, a retry and the stale-delivery sweeper cannot send it twice. A worker that dies mid-send
  leaves the row in `sending`; the sweeper marks it failed ("interrupted") instead of risking a second
  send. Failures are shown to the trader in the notification centre and to staff in the admin.

Channels register themselves with `register_channel(name, sender, label=...)`. A sender is a callable
`sender(notification) -> None` that raises `DeliveryFailed` (or any exception) to be retried later, or
`DeliveryRefused` when retrying cannot help (no address, account unlinked). `in_app` and `email` are
registered below; the Discord bot registers `discord` from its AppConfig.ready() (docs/alerts.md).

Kinds are dotted names ("alert.price", "order.filled"). Apps describe theirs with `register_kind` so the
preferences page can list them; a user's `NotificationPreference` rows override the defaults.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog
from asgiref.sync import async_to_sync
from celery import shared_task
from channels.layers import get_channel_layer
from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from core.api_events import api_events_send
from core.consumers import page_presence, user_group
from core.errors import DomainError
from core.models import DeliveryStatus, Notification, NotificationDelivery, NotificationPreference
from core.rls import system_context, tenant

logger = structlog.get_logger(__name__)

MAX_ATTEMPTS = 5
RETRY_BASE_SECONDS = 10
# A pending delivery older than this lost its queue message (broker down at commit): it is enqueued again.
STALE_PENDING = timedelta(minutes=2)
# A delivery still `sending` after this was interrupted mid-send: failed, never sent a second time.
STALE_SENDING = timedelta(minutes=10)
# In-app frames sent at once by `send_in_app_many`.
SEND_CONCURRENCY = 8


class DeliveryFailed(Exception):
    """The channel could not deliver now; the delivery is retried with backoff, and no sooner than
    `retry_after` seconds when the channel knows (a rate limit's wait)."""

    def __init__(self, message: str = "", *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeliveryRefused(Exception):
    """The channel cannot deliver this at all (no address, account unlinked); not retried."""


Sender = Callable[[Notification], None]


@dataclass(frozen=True)
class Channel:
    name: str
    label: str
    sender: Sender
    default_enabled: bool = True
    # Inline channels are sent from the process that committed the notification, right after commit,
    # and fall back to the queue if that fails; the others always go through Celery.
    inline: bool = False
    available: Callable[[object], bool] = field(default=lambda user: True)
    # Optional: send many notifications (of many users) at once, for `notifications_dispatch`.
    send_many: Callable[[list[Notification]], None] | None = None


@dataclass(frozen=True)
class Kind:
    name: str
    label: str
    # Channel names on by default for this kind; None means each channel's own default.
    default_channels: frozenset[str] | None = None


_channels: dict[str, Channel] = {}
_kinds: dict[str, Kind] = {}


def register_channel(
    name: str,
    sender: Sender,
    *,
    label: str,
    default_enabled: bool = True,
    inline: bool = False,
    available: Callable[[object], bool] | None = None,
    send_many: Callable[[list[Notification]], None] | None = None,
) -> Channel:
    """Add (or replace, when a module is reloaded) a delivery channel."""
    channel = Channel(
        name=name,
        label=label,
        sender=sender,
        default_enabled=default_enabled,
        inline=inline,
        available=available or (lambda user: True),
        send_many=send_many,
    )
    _channels[name] = channel
    return channel


def channel_list() -> list[Channel]:
    return list(_channels.values())


def register_kind(name: str, *, label: str, default_channels: Iterable[str] | None = None) -> Kind:
    kind = Kind(
        name=name,
        label=label,
        default_channels=None if default_channels is None else frozenset(default_channels),
    )
    _kinds[name] = kind
    return kind


def kind_list() -> list[Kind]:
    return sorted(_kinds.values(), key=lambda kind: kind.name)


def _default_enabled(kind: str, channel: Channel) -> bool:
    registered = _kinds.get(kind)
    if registered is not None and registered.default_channels is not None:
        return channel.name in registered.default_channels
    return channel.default_enabled


# --- Writing --------------------------------------------------------------------------------------------


def notify(*, user, kind: str, message: str, link: str = "", dedup_key: str | None = None) -> Notification:
    """Tell `user` something on every channel they allow for `kind`; once per `dedup_key`."""
    if not kind or not message:
        raise ValueError("notify() needs a kind and a message")
    with tenant(user.pk):
        if dedup_key is not None:
            existing = Notification.objects.filter(user=user, dedup_key=dedup_key).first()
            if existing is not None:
                return existing
        try:
            with transaction.atomic():
                notification = Notification.objects.create(
                    user=user, kind=kind, message=message, link=link, dedup_key=dedup_key
                )
        except IntegrityError:
            # A concurrent notify() with the same key committed first; the constraint chose it.
            return Notification.objects.get(user=user, dedup_key=dedup_key)
        choices = dict(
            NotificationPreference.objects.filter(user=user, kind=kind).values_list("channel", "enabled")
        )
        deliveries = NotificationDelivery.objects.bulk_create(
            [
                NotificationDelivery(user=user, notification=notification, channel=c.name)
                for c in channels_enabled(user=user, kind=kind, choices=choices)
            ]
        )
        plan = [(delivery.pk, _channels[delivery.channel].inline) for delivery in deliveries]
        transaction.on_commit(lambda: _dispatch(plan, user_id=user.pk))
    return notification


def channels_enabled(*, user, kind: str, choices: dict[str, bool]) -> list[Channel]:
    """The channels `user` gets `kind` on, given their stored choices for it ({channel: enabled})."""
    return [
        channel
        for channel in _channels.values()
        if choices.get(channel.name, _default_enabled(kind, channel)) and channel.available(user)
    ]


def notification_build(
    *, user, kind: str, message: str, link: str = "", dedup_key: str | None = None, choices: dict[str, bool]
) -> tuple[Notification, list[NotificationDelivery]]:
    """The rows `notify()` writes, unsaved, for batch writers that save many users' rows at once (each as
    its owner) and then hand the deliveries to `notifications_dispatch` after their commit."""
    if not kind or not message:
        raise ValueError("notification_build() needs a kind and a message")
    now = timezone.now()
    notification = Notification(
        user=user, kind=kind, message=message, link=link, dedup_key=dedup_key, created_at=now
    )
    deliveries = [
        NotificationDelivery(user=user, notification=notification, channel=channel.name, created_at=now)
        for channel in channels_enabled(user=user, kind=kind, choices=choices)
    ]
    return notification, deliveries


def notifications_dispatch(deliveries: Iterable[NotificationDelivery]) -> None:
    """Send committed deliveries of many users (the batch form of what `notify()` does after its commit).

    Inline deliveries are claimed together (pending -> sending, each as its owner, one round trip), sent
    with the channel's `send_many` when it has one, and marked sent or failed together; a failure is
    retried through the queue like any other. The others go to the queue.
    """
    from core.batch import TenantPipeline

    inline: list[NotificationDelivery] = []
    queued: list[NotificationDelivery] = []
    for delivery in deliveries:
        channel = _channels.get(delivery.channel)
        (inline if channel is not None and channel.inline else queued).append(delivery)
    for delivery in queued:
        _enqueue(delivery.pk, user_id=delivery.user_id)
    if not inline:
        return
    now = timezone.now()
    with transaction.atomic():
        pipe = TenantPipeline()
        claims = [
            (
                delivery,
                pipe.execute(
                    "UPDATE core_notificationdelivery SET status = %s, attempts = attempts + 1, updated_at = %s "
                    "WHERE id = %s AND status = %s RETURNING id",
                    [DeliveryStatus.SENDING, now, delivery.pk, DeliveryStatus.PENDING],
                    user_id=delivery.user_id,
                ),
            )
            for delivery in inline
        ]
        pipe.close()
        claimed = [delivery for delivery, result in claims if result.scalar() is not None]
    by_channel: dict[str, list[NotificationDelivery]] = {}
    for delivery in claimed:
        by_channel.setdefault(delivery.channel, []).append(delivery)
    failed: dict[int, str] = {}
    for name, group in by_channel.items():
        channel = _channels[name]
        try:
            if channel.send_many is not None:
                channel.send_many([delivery.notification for delivery in group])
            else:
                for delivery in group:
                    channel.sender(delivery.notification)
        except Exception as exc:  # noqa: BLE001 - recorded on the rows and retried through the queue
            logger.exception("notifications.batch_send_failed", channel=name, deliveries=len(group))
            failed.update({delivery.pk: f"{exc.__class__.__name__}: {exc}" for delivery in group})
    now = timezone.now()
    with transaction.atomic():
        pipe = TenantPipeline()
        for delivery in claimed:
            if delivery.pk in failed:
                pipe.write(
                    "UPDATE core_notificationdelivery SET status = %s, last_error = %s, updated_at = %s WHERE id = %s",
                    [DeliveryStatus.PENDING, failed[delivery.pk][:2000], now, delivery.pk],
                    user_id=delivery.user_id,
                )
            else:
                pipe.write(
                    "UPDATE core_notificationdelivery SET status = %s, sent_at = %s, last_error = '', updated_at = %s "
                    "WHERE id = %s",
                    [DeliveryStatus.SENT, now, now, delivery.pk],
                    user_id=delivery.user_id,
                )
        pipe.close()
    for delivery in claimed:
        if delivery.pk in failed:
            _enqueue(delivery.pk, user_id=delivery.user_id, countdown=RETRY_BASE_SECONDS)


def _dispatch(plan: list[tuple[int, bool]], *, user_id: int) -> None:
    for delivery_id, inline in plan:
        if not inline:
            _enqueue(delivery_id, user_id=user_id)
            continue
        try:
            outcome = notification_deliver(delivery_id=delivery_id, user_id=user_id)
        except Exception:
            logger.exception("notifications.inline_delivery_crashed", delivery_id=delivery_id)
            _enqueue(delivery_id, user_id=user_id)
            continue
        if outcome.retry_in is not None:
            _enqueue(delivery_id, user_id=user_id, countdown=outcome.retry_in)


def _enqueue(delivery_id: int, *, user_id: int, countdown: int | None = None) -> None:
    try:
        deliver_notification_task.apply_async(args=[delivery_id, user_id], countdown=countdown)
    except Exception:
        # The broker is unreachable; the row stays pending and the sweeper enqueues it again.
        logger.exception("notifications.enqueue_failed", delivery_id=delivery_id)


@dataclass(frozen=True)
class DeliveryOutcome:
    status: str
    retry_in: int | None = None


def notification_deliver(*, delivery_id: int, user_id: int) -> DeliveryOutcome:
    """Send one delivery if it is still pending. Safe to call any number of times, concurrently."""
    now = timezone.now()
    with tenant(user_id):
        claimed = NotificationDelivery.objects.filter(pk=delivery_id, status=DeliveryStatus.PENDING).update(
            status=DeliveryStatus.SENDING, attempts=F("attempts") + 1, updated_at=now
        )
        delivery = (
            NotificationDelivery.objects.select_related("notification", "notification__user")
            .defer("notification__user__password")
            .filter(pk=delivery_id)
            .first()
        )
    if delivery is None:
        return DeliveryOutcome(status="missing")
    if not claimed:
        return DeliveryOutcome(status=delivery.status)
    channel = _channels.get(delivery.channel)
    error: str
    retry = True
    wait: float | None = None
    try:
        if channel is None:
            raise DeliveryFailed(f"the {delivery.channel!r} channel is not registered in this process")
        channel.sender(delivery.notification)
    except DeliveryRefused as exc:
        error, retry = str(exc) or exc.__class__.__name__, False
    except Exception as exc:  # noqa: BLE001 - any sender failure is recorded on the row and retried
        error = f"{exc.__class__.__name__}: {exc}"
        wait = getattr(exc, "retry_after", None)
    else:
        with tenant(user_id):
            NotificationDelivery.objects.filter(pk=delivery_id).update(
                status=DeliveryStatus.SENT, sent_at=timezone.now(), last_error="", updated_at=timezone.now()
            )
        return DeliveryOutcome(status=DeliveryStatus.SENT)
    attempts = delivery.attempts
    final = not retry or attempts >= MAX_ATTEMPTS
    with tenant(user_id):
        NotificationDelivery.objects.filter(pk=delivery_id).update(
            status=DeliveryStatus.FAILED if final else DeliveryStatus.PENDING,
            last_error=error[:2000],
            updated_at=timezone.now(),
        )
    log = logger.error if final else logger.warning
    log(
        "notifications.delivery_failed",
        delivery_id=delivery_id,
        channel=delivery.channel,
        attempts=attempts,
        final=final,
        error=error,
    )
    if final:
        return DeliveryOutcome(status=DeliveryStatus.FAILED)
    backoff = RETRY_BASE_SECONDS * 2 ** (attempts - 1)
    if wait is not None:
        backoff = max(backoff, math.ceil(wait))
    return DeliveryOutcome(status=DeliveryStatus.PENDING, retry_in=backoff)


@shared_task(bind=True, name="core.notifications.deliver", max_retries=MAX_ATTEMPTS, acks_late=True)
def deliver_notification_task(self, delivery_id: int, user_id: int) -> str:
    outcome = notification_deliver(delivery_id=delivery_id, user_id=user_id)
    if outcome.retry_in is not None:
        raise self.retry(countdown=outcome.retry_in)
    return outcome.status


def notification_sweep(*, now: datetime | None = None) -> dict[str, int]:
    """Re-enqueue deliveries whose queue message was lost; fail the ones interrupted mid-send."""
    now = now or timezone.now()
    with system_context(reason="notifications: sweep stale deliveries of every user"):
        interrupted = NotificationDelivery.objects.filter(
            status=DeliveryStatus.SENDING, updated_at__lt=now - STALE_SENDING
        ).update(
            status=DeliveryStatus.FAILED,
            last_error="Interrupted while sending; not retried so that it is never sent twice.",
            updated_at=now,
        )
        stale = list(
            NotificationDelivery.objects.filter(
                status=DeliveryStatus.PENDING, updated_at__lt=now - STALE_PENDING
            ).values_list("pk", "user_id")[:1000]
        )
    for delivery_id, user_id in stale:
        _enqueue(delivery_id, user_id=user_id)
    return {"requeued": len(stale), "interrupted": interrupted}


@shared_task(name="core.notifications.sweep")
def notification_sweep_task() -> dict[str, int]:
    return notification_sweep()


def notification_mark_read(*, user, notification_id: int | None = None) -> int:
    """Mark one notification (or, without an id, all of them) read. Returns how many changed."""
    with tenant(user.pk):
        unread = Notification.objects.filter(user=user, read_at__isnull=True)
        if notification_id is not None:
            unread = unread.filter(pk=notification_id)
        return unread.update(read_at=timezone.now())


def notification_preference_set(*, user, kind: str, channel: str, enabled: bool) -> NotificationPreference:
    if kind not in _kinds:
        raise DomainError(f"Unknown notification kind {kind!r}.", field="kind")
    if channel not in _channels:
        raise DomainError(f"Unknown channel {channel!r}.", field="channel")
    with tenant(user.pk):
        preference, _ = NotificationPreference.objects.update_or_create(
            user=user, kind=kind, channel=channel, defaults={"enabled": enabled}
        )
    return preference


# --- Reading --------------------------------------------------------------------------------------------


def notification_list(*, user) -> QuerySet[Notification]:
    return (
        Notification.objects.filter(user=user).prefetch_related("deliveries").order_by("-created_at", "-id")
    )


def notification_unread_count(*, user) -> int:
    return Notification.objects.filter(user=user, read_at__isnull=True).count()


@dataclass(frozen=True)
class PreferenceRow:
    kind: Kind
    channels: list[tuple[Channel, bool]]


def notification_preferences(*, user) -> list[PreferenceRow]:
    """Every registered kind with, per channel, whether the user gets it (their choice or the default)."""
    choices = {
        (kind, channel): enabled
        for kind, channel, enabled in NotificationPreference.objects.filter(user=user).values_list(
            "kind", "channel", "enabled"
        )
    }
    return [
        PreferenceRow(
            kind=kind,
            channels=[
                (channel, choices.get((kind.name, channel.name), _default_enabled(kind.name, channel)))
                for channel in _channels.values()
                if channel.available(user)
            ],
        )
        for kind in kind_list()
    ]


# --- The built-in channels ------------------------------------------------------------------------------


def render_unread_badge(count: int) -> str:
    """The unread counter in the navigation; the same markup is swapped in over the WebSocket."""
    if count:
        return format_html('<span id="notification-unread" class="badge" hx-swap-oob="true">{}</span>', count)
    return mark_safe('<span id="notification-unread" class="badge" hx-swap-oob="true" hidden></span>')  # noqa: S308 - constant


def render_toast(notification: Notification) -> str:
    link = format_html(' <a href="{}">Open</a>', notification.link) if notification.link else ""
    return format_html(
        '<div id="toasts" hx-swap-oob="beforeend">'
        '<div class="toast" role="status" data-kind="{}" data-notification="{}"><p>{}{}</p></div></div>',
        notification.kind,
        notification.pk,
        notification.message,
        link,
    )


def send_in_app(notification: Notification) -> None:
    """A toast on every page the user has open, and the unread counter updated, in one WebSocket frame
    (nothing to render or send when no page is open: the next page shows the count)."""
    if page_presence.among([notification.user_id]):
        with tenant(notification.user_id):
            unread = notification_unread_count(user=notification.user)
        html = render_toast(notification) + render_unread_badge(unread)
        async_to_sync(get_channel_layer().group_send)(
            user_group(notification.user_id), {"type": "user.html", "html": html}
        )
    api_events_send(_api_events([notification]))


def _api_events(notifications: list[Notification]) -> list[tuple[int, str, dict]]:
    """The programs' socket (core.api_events): every in-app notification, and alerts' also as `alert`."""
    events = []
    for n in notifications:
        payload = {"id": n.pk, "kind": n.kind, "message": n.message, "link": n.link, "created_at": n.created_at}
        events.append((n.user_id, "notifications", payload))
        if n.kind.startswith("alert"):
            events.append((n.user_id, "alerts", payload))
    return events


def send_in_app_many(notifications: list[Notification]) -> None:
    """`send_in_app` for many users: their unread counts in one round trip, then one frame per user with
    a page open; then the programs' sockets (api_events_send looks those up itself)."""
    watching = page_presence.among(notification.user_id for notification in notifications)
    toasts: dict[int, list[str]] = {}
    for notification in notifications:
        if notification.user_id in watching:
            toasts.setdefault(notification.user_id, []).append(render_toast(notification))
    if toasts:
        _toasts_send(toasts)
    api_events_send(_api_events(notifications))


def _toasts_send(toasts: dict[int, list[str]]) -> None:
    """One frame per user: their toasts and their unread count (counted in one round trip for all)."""
    from core.batch import TenantPipeline

    with transaction.atomic():
        pipe = TenantPipeline()
        counts = {
            user_id: pipe.execute(
                "SELECT count(*) FROM core_notification WHERE user_id = %s AND read_at IS NULL",
                [user_id],
                user_id=user_id,
            )
            for user_id in toasts
        }
        pipe.close()
    layer = get_channel_layer()
    frames = [
        (user_group(user_id), "".join(parts) + render_unread_badge(counts[user_id].scalar() or 0))
        for user_id, parts in toasts.items()
    ]

    async def send_all() -> None:
        # A few at a time, over the channel layer's pool of Redis connections (which is bounded).
        gate = asyncio.Semaphore(SEND_CONCURRENCY)

        async def send(group: str, html: str) -> None:
            async with gate:
                await layer.group_send(group, {"type": "user.html", "html": html})

        results = await asyncio.gather(*(send(group, html) for group, html in frames), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result

    async_to_sync(send_all)()


def absolute_url(link: str) -> str:
    return f"{settings.SITE_URL.rstrip('/')}{link}" if link.startswith("/") else link


def send_email(notification: Notification) -> None:
    user = notification.user
    if not user.email:
        raise DeliveryRefused("The account has no email address.")
    first_line = notification.message.splitlines()[0] if notification.message else notification.kind
    subject = f"{settings.ACCOUNT_EMAIL_SUBJECT_PREFIX}{first_line[:120]}"
    body = notification.message
    if notification.link:
        body += f"\n\n{absolute_url(notification.link)}"
    body += "\n\nChoose what Nexus emails you about on your notification settings page."
    send_mail(subject, body, None, [user.email], fail_silently=False)


register_channel("in_app", send_in_app, label="In-app", inline=True, send_many=send_in_app_many)
register_channel("email", send_email, label="Email")
