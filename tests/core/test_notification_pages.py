"""The notification centre and its delivery settings (/notifications/), through the full middleware stack.

The kinds shown are the ones alerts registers: any app's notifications land here."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from core.models import Notification, NotificationPreference
from core.notifications import notify
from core.rls import tenant


@pytest.fixture
def client_a(user_a) -> Client:
    client = Client()
    client.force_login(user_a)
    return client


def test_notification_centre_lists_unread_with_delivery_state_and_marks_read(client_a, user_a):
    notify(
        user=user_a, kind="alert.price", message="BTC/USDT rose above 100.00 (now 101.00).", link="/alerts/"
    )
    page = client_a.get("/dashboard/").content.decode()
    assert '<span id="notification-unread" class="badge" hx-swap-oob="true">1</span>' in page
    centre = client_a.get("/notifications/").content.decode()
    assert "BTC/USDT rose above 100.00 (now 101.00)." in centre
    # Committed: the in-app toast went out at commit; the email waits for a worker.
    assert "email: pending" in centre and "in_app: sent" in centre
    client_a.post("/notifications/read/")
    with tenant(user_a.pk):
        assert Notification.objects.filter(read_at__isnull=True).count() == 0
    page = client_a.get("/dashboard/").content.decode()
    assert '<span id="notification-unread" class="badge" hx-swap-oob="true" hidden></span>' in page


def test_preferences_page_turns_a_channel_off_for_a_kind(client_a, user_a):
    page = client_a.get("/notifications/settings/").content.decode()
    assert 'value="alert.price:email"' in page and "Price alerts" in page
    # Defaults: price alerts everywhere; order-fill alerts not in-app (trading already shows every fill there).
    assert re.search(r'value="alert.price:in_app"[^>]*checked>', page)
    assert re.search(r'value="alert.order_filled:email"[^>]*checked>', page)
    assert re.search(r'value="alert.order_filled:in_app"[^>]*"\s*>', page)
    on = ["alert.price:in_app", "alert.percent_move:in_app", "alert.percent_move:email"]
    client_a.post("/notifications/settings/", {"on": on})
    with tenant(user_a.pk):
        prefs = dict(
            ((kind, channel), enabled)
            for kind, channel, enabled in NotificationPreference.objects.values_list(
                "kind", "channel", "enabled"
            )
        )
    assert prefs[("alert.price", "email")] is False
    assert ("alert.price", "in_app") not in prefs  # unchanged from the default: no row
    notify(user=user_a, kind="alert.price", message="in-app only")
    with tenant(user_a.pk):
        notification = Notification.objects.get(message="in-app only")
        assert list(notification.deliveries.values_list("channel", flat=True)) == ["in_app"]
