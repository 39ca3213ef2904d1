"""The notification service: who gets what on which channel, each delivery sent at most once."""

from __future__ import annotations

import dataclasses
import threading
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core import mail
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from core import notifications
from core.consumers import page_presence, user_group
from core.models import DeliveryStatus, Notification, NotificationDelivery
from core.notifications import (
    DeliveryRefused,
    notification_deliver,
    notification_mark_read,
    notification_preference_set,
    notification_sweep,
    notification_unread_count,
    notify,
)
from core.rls import system_context, tenant
from tests.alerts.conftest import COMMITTED
from tests.factories import UserFactory


def _deliveries(user) -> dict[str, NotificationDelivery]:
    with tenant(user.pk):
        return {d.channel: d for d in NotificationDelivery.objects.all()}


@pytest.fixture
def flaky_channel():
    """A channel whose sender fails the way a provider outage does, until told otherwise."""
    calls: list[int] = []
    state = {"fail": "retry"}

    def sender(notification):
        calls.append(notification.pk)
        if state["fail"] == "retry":
            raise ConnectionError("provider timed out")
        if state["fail"] == "refuse":
            raise DeliveryRefused("No Discord account linked.")

    notifications.register_channel("flaky", sender, label="Flaky")
    yield calls, state
    notifications._channels.pop("flaky")


def test_notify_writes_the_centre_entry_and_one_delivery_per_enabled_channel(user_a):
    notifications.register_kind("test.quiet", label="Quiet", default_channels={"in_app"})
    notification = notify(user=user_a, kind="test.quiet", message="Hello", link="/alerts/")
    assert set(_deliveries(user_a)) == {"in_app"}
    notification_preference_set(user=user_a, kind="test.quiet", channel="email", enabled=True)
    notification_preference_set(user=user_a, kind="test.quiet", channel="in_app", enabled=False)
    notify(user=user_a, kind="test.quiet", message="Again")
    with tenant(user_a.pk):
        assert Notification.objects.count() == 2
        assert sorted(
            NotificationDelivery.objects.exclude(notification=notification).values_list("channel", flat=True)
        ) == ["email"]


def test_unknown_preference_is_refused(user_a):
    with pytest.raises(notifications.DomainError, match="Unknown channel 'pigeon'"):
        notification_preference_set(user=user_a, kind="alert.price", channel="pigeon", enabled=True)


def test_the_same_dedup_key_notifies_once(user_a, django_capture_on_commit_callbacks):
    # One transaction around both, as in a request: the callbacks run at its commit, after being counted.
    with transaction.atomic(), django_capture_on_commit_callbacks() as callbacks:
        first = notify(user=user_a, kind="alert.price", message="BTC up", dedup_key="firing:1")
        second = notify(user=user_a, kind="alert.price", message="BTC up", dedup_key="firing:1")
    assert first.pk == second.pk
    assert len(callbacks) == 1
    assert len(_deliveries(user_a)) == 2
    assert len(mail.outbox) == 0  # email goes through Celery, not inline


def test_a_delivery_is_sent_once_however_often_it_is_run(user_a):
    notify(
        user=user_a, kind="alert.price", message="BTC/USDT rose above 100.00 (now 101.00).", link="/alerts/1/"
    )
    email = _deliveries(user_a)["email"]
    assert notification_deliver(delivery_id=email.pk, user_id=user_a.pk).status == "sent"
    assert notification_deliver(delivery_id=email.pk, user_id=user_a.pk).status == "sent"
    assert len(mail.outbox) == 1
    sent = mail.outbox[0]
    assert sent.to == [user_a.email]
    assert sent.subject == "[Nexus] BTC/USDT rose above 100.00 (now 101.00)."
    assert "http://127.0.0.1:8000/alerts/1/" in sent.body
    email = _deliveries(user_a)["email"]
    assert (email.status, email.attempts) == (DeliveryStatus.SENT, 1)


@COMMITTED
def test_racing_workers_send_one_email():
    user = UserFactory()
    notify(user=user, kind="alert.price", message="Race")
    delivery_id = _deliveries(user)["email"].pk
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def work():
        try:
            barrier.wait()
            outcomes.append(notification_deliver(delivery_id=delivery_id, user_id=user.pk).status)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(mail.outbox) == 1
    assert len(outcomes) == 6
    mail.outbox.clear()


def test_failures_are_retried_with_backoff_then_marked_failed(user_a, flaky_channel):
    calls, state = flaky_channel
    notify(user=user_a, kind="alert.price", message="Will fail")
    delivery = _deliveries(user_a)["flaky"]
    outcomes = [notification_deliver(delivery_id=delivery.pk, user_id=user_a.pk) for _ in range(6)]
    assert [o.retry_in for o in outcomes[:4]] == [10, 20, 40, 80]
    assert outcomes[4].status == "failed" and outcomes[4].retry_in is None
    assert outcomes[5].status == "failed"  # a failed delivery is not tried again
    assert len(calls) == notifications.MAX_ATTEMPTS
    delivery = _deliveries(user_a)["flaky"]
    assert (delivery.status, delivery.last_error) == ("failed", "ConnectionError: provider timed out")


def test_a_refused_delivery_fails_at_once_and_a_recovered_one_is_sent(user_a, flaky_channel):
    calls, state = flaky_channel
    state["fail"] = "refuse"
    notify(user=user_a, kind="alert.price", message="No Discord")
    refused = _deliveries(user_a)["flaky"]
    assert notification_deliver(delivery_id=refused.pk, user_id=user_a.pk).status == "failed"
    assert _deliveries(user_a)["flaky"].last_error == "No Discord account linked."
    state["fail"] = "retry"
    with tenant(user_a.pk):
        NotificationDelivery.objects.all().delete()
    notify(user=user_a, kind="alert.price", message="Flaky then fine")
    delivery = _deliveries(user_a)["flaky"]
    assert notification_deliver(delivery_id=delivery.pk, user_id=user_a.pk).retry_in == 10
    state["fail"] = None
    assert notification_deliver(delivery_id=delivery.pk, user_id=user_a.pk).status == "sent"
    assert _deliveries(user_a)["flaky"].last_error == ""


def test_sweep_fails_interrupted_sends_instead_of_sending_twice(user_a):
    notify(user=user_a, kind="alert.price", message="Interrupted")
    email = _deliveries(user_a)["email"]
    with tenant(user_a.pk):
        NotificationDelivery.objects.filter(pk=email.pk).update(status=DeliveryStatus.SENDING)
    later = timezone.now() + timedelta(minutes=11)
    result = notification_sweep(now=later)
    assert result["interrupted"] == 1
    email = _deliveries(user_a)["email"]
    assert email.status == "failed" and email.last_error.startswith("Interrupted while sending")
    assert notification_deliver(delivery_id=email.pk, user_id=user_a.pk).status == "failed"
    assert mail.outbox == []


def test_in_app_delivery_pushes_a_toast_and_the_unread_count_to_the_users_group(user_a):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(user_a.pk), channel)
    cache.set(page_presence.key(user_a.pk), 1, 60)  # as the page's socket marks it (core.consumers)
    notify(user=user_a, kind="alert.price", message="BTC <up>", link="/alerts/7/")
    in_app = _deliveries(user_a)["in_app"]
    assert notification_deliver(delivery_id=in_app.pk, user_id=user_a.pk).status == "sent"
    message = async_to_sync(layer.receive)(channel)
    assert message["type"] == "user.html"
    html = message["html"]
    assert '<div id="toasts" hx-swap-oob="beforeend">' in html
    assert "BTC &lt;up&gt;" in html and '<a href="/alerts/7/">Open</a>' in html
    assert '<span id="notification-unread" class="badge" hx-swap-oob="true">1</span>' in html
    async_to_sync(layer.group_discard)(user_group(user_a.pk), channel)


def test_unread_count_and_mark_read_are_per_user(user_a, user_b):
    for n in range(3):
        notify(user=user_a, kind="alert.price", message=f"a{n}")
    notify(user=user_b, kind="alert.price", message="b")
    with tenant(user_a.pk):
        assert notification_unread_count(user=user_a) == 3
    first = Notification.objects.none()
    with tenant(user_a.pk):
        first = Notification.objects.order_by("pk").first()
    assert notification_mark_read(user=user_a, notification_id=first.pk) == 1
    assert notification_mark_read(user=user_b, notification_id=first.pk) == 0  # not theirs
    assert notification_mark_read(user=user_a) == 2
    with tenant(user_b.pk):
        assert notification_unread_count(user=user_b) == 1


@COMMITTED
def test_email_is_delivered_by_a_real_celery_worker_through_redis():
    from celery.contrib.testing.worker import start_worker

    from config.celery import app

    user = UserFactory()
    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        notify(user=user, kind="alert.price", message="Through the queue")
        deadline = timezone.now() + timedelta(seconds=15)
        while not mail.outbox and timezone.now() < deadline:
            threading.Event().wait(0.05)
    assert [m.subject for m in mail.outbox] == ["[Nexus] Through the queue"]
    with system_context(reason="test"):
        assert NotificationDelivery.objects.get(channel="email").status == "sent"
    mail.outbox.clear()


def test_beat_runs_the_alert_and_delivery_sweeps(db):
    from django.conf import settings

    from config.celery import app

    app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    for task in ("alerts.maintenance", "core.notifications.sweep", "core.notifications.deliver"):
        assert task in app.tasks
    assert {"alerts.maintenance", "core.notifications.sweep"} <= scheduled


def _built(user, message: str):
    """A notification and its deliveries as a batch writer stores them (notification_build, then saved)."""
    notification, deliveries = notifications.notification_build(
        user=user, kind="trading.order_filled", message=message, link="/trading/orders/history/", choices={}
    )
    with tenant(user.pk):
        notification.save()
        for delivery in deliveries:
            delivery.notification = notification
            delivery.save()
    return deliveries


def test_a_batch_of_toasts_reaches_each_trader_once_with_their_own_unread_count(user_a, user_b, monkeypatch):
    layer = get_channel_layer()
    inboxes = {}
    for user in (user_a, user_b):
        inboxes[user.pk] = async_to_sync(layer.new_channel)()
        async_to_sync(layer.group_add)(user_group(user.pk), inboxes[user.pk])
        cache.set(page_presence.key(user.pk), 1, 60)  # as the page's socket marks it (core.consumers)
    in_app = notifications._channels["in_app"]
    sent = []

    def send_many(batch):
        sent.append(sorted(notification.message for notification in batch))
        in_app.send_many(batch)

    monkeypatch.setitem(notifications._channels, "in_app", dataclasses.replace(in_app, send_many=send_many))
    deliveries = _built(user_a, "Bought 0.005 BTC") + _built(user_a, "Bought 0.010 BTC") + _built(user_b, "Sold")
    assert [d.channel for d in deliveries] == ["in_app"] * 3, "order fills are in-app only by default"
    notifications.notifications_dispatch(deliveries)
    notifications.notifications_dispatch(deliveries)  # delivered again: already sent, nothing more
    assert sent == [["Bought 0.005 BTC", "Bought 0.010 BTC", "Sold"]]
    frame_a = async_to_sync(layer.receive)(inboxes[user_a.pk])["html"]
    frame_b = async_to_sync(layer.receive)(inboxes[user_b.pk])["html"]
    assert "Bought 0.005 BTC" in frame_a and "Bought 0.010 BTC" in frame_a and "Sold" not in frame_a
    assert '<span id="notification-unread" class="badge" hx-swap-oob="true">2</span>' in frame_a
    assert "Sold" in frame_b and '<span id="notification-unread" class="badge" hx-swap-oob="true">1</span>' in frame_b
    for user in (user_a, user_b):
        with tenant(user.pk):
            assert set(NotificationDelivery.objects.values_list("status", "attempts")) == {("sent", 1)}
        async_to_sync(layer.group_discard)(user_group(user.pk), inboxes[user.pk])


def test_a_batch_whose_toasts_fail_goes_back_to_the_queue(user_a, monkeypatch):
    deliveries = _built(user_a, "Bought 0.005 BTC")
    queued = []

    def down(notifications_):
        raise ConnectionError("redis is down")

    monkeypatch.setitem(
        notifications._channels, "in_app", dataclasses.replace(notifications._channels["in_app"], send_many=down)
    )
    monkeypatch.setattr(
        notifications, "_enqueue", lambda delivery_id, *, user_id, countdown=None: queued.append(delivery_id)
    )
    notifications.notifications_dispatch(deliveries)
    delivery = _deliveries(user_a)["in_app"]
    assert (delivery.status, delivery.attempts, delivery.last_error) == ("pending", 1, "ConnectionError: redis is down")
    assert queued == [delivery.pk], "retried by the queue (notification_deliver), not lost"
