"""The `discord` notification channel: a DM through Discord's REST API, sent by the delivery worker
(core.notifications.notification_deliver), captured at the HTTP boundary with `responses`."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import responses
from django.test import Client
from responses import matchers

from accounts.services import discord_link_code_issue, discord_link_redeem
from alerts.services import alert_fire
from bot.discord import notify as discord_notify
from core.models import DeliveryStatus, NotificationDelivery
from core.notifications import MAX_ATTEMPTS, notification_deliver, notify
from core.rls import tenant
from tests.factories.alerts import AlertFactory
from tests.factories.marketdata import InstrumentFactory

API = "https://discord.example/api/v10"
DISCORD_ID = "80351110224678912"
DM_CHANNEL = "319674150115610528"
RATE_LIMITED = {"message": "You are being rate limited.", "retry_after": 0.75, "global": False, "code": 0}


@pytest.fixture
def bot_configured(settings):
    settings.DISCORD_BOT_TOKEN = "bot-token-123"
    settings.DISCORD_API_BASE = API


@pytest.fixture
def linked(user_a, bot_configured):
    _, code = discord_link_code_issue(user=user_a)
    discord_link_redeem(discord_user_id=DISCORD_ID, code=code, username="alice")
    return user_a


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(discord_notify, "_sleep", waited.append)
    return waited


def _discord_delivery(user) -> NotificationDelivery:
    with tenant(user.pk):
        return NotificationDelivery.objects.get(channel="discord")


def _notify(user, **kwargs):
    kwargs.setdefault("kind", "alert.price")
    kwargs.setdefault("message", "BTC/USDT rose above 70,000.00 (now 70,012.00).")
    kwargs.setdefault("link", "/alerts/")
    notify(user=user, **kwargs)
    return _discord_delivery(user)


def _dm_channel_ok():
    return responses.Response(
        "POST",
        f"{API}/users/@me/channels",
        json={"id": DM_CHANNEL, "type": 1, "recipients": []},
        match=[
            matchers.json_params_matcher({"recipient_id": DISCORD_ID}),
            matchers.header_matcher({"Authorization": "Bot bot-token-123"}),
        ],
    )


@responses.activate
def test_a_429_is_waited_out_once_then_the_dm_is_sent(linked, waits, settings):
    settings.SITE_URL = "https://nexus.example"
    delivery = _notify(linked)
    responses.add(
        "POST",
        f"{API}/users/@me/channels",
        json=RATE_LIMITED,
        status=429,
        headers={"Retry-After": "1", "X-RateLimit-Scope": "user"},
    )
    responses.add(_dm_channel_ok())
    responses.add("POST", f"{API}/channels/{DM_CHANNEL}/messages", json={"id": "1", "channel_id": DM_CHANNEL})

    outcome = notification_deliver(delivery_id=delivery.pk, user_id=linked.pk)

    assert outcome.status == DeliveryStatus.SENT
    assert waits == [0.75]  # the body's retry_after, more precise than the header
    message = json.loads(responses.calls[-1].request.body)
    embed = message["embeds"][0]
    assert embed["description"] == "BTC/USDT rose above 70,000.00 (now 70,012.00)."
    assert embed["url"] == "https://nexus.example/alerts/"
    assert responses.calls[-1].request.headers["Authorization"] == "Bot bot-token-123"
    assert _discord_delivery(linked).status == DeliveryStatus.SENT
    # Exactly once: delivering the same row again sends nothing.
    assert notification_deliver(delivery_id=delivery.pk, user_id=linked.pk).status == DeliveryStatus.SENT
    assert len(responses.calls) == 3


@responses.activate
def test_a_long_rate_limit_keeps_the_delivery_queued_no_sooner_than_discord_asks(linked, waits):
    delivery = _notify(linked)
    responses.add("POST", f"{API}/users/@me/channels", json={**RATE_LIMITED, "retry_after": 42.5}, status=429)
    outcome = notification_deliver(delivery_id=delivery.pk, user_id=linked.pk)
    assert waits == []
    assert outcome.status == DeliveryStatus.PENDING and outcome.retry_in == 43
    row = _discord_delivery(linked)
    assert row.status == DeliveryStatus.PENDING and "rate limit" in row.last_error


@responses.activate
def test_a_failing_discord_keeps_the_delivery_queued_and_the_trader_sees_it(linked, waits):
    delivery = _notify(linked)
    responses.add("POST", f"{API}/users/@me/channels", json={"message": "Service unavailable"}, status=503)
    outcome = notification_deliver(delivery_id=delivery.pk, user_id=linked.pk)
    assert outcome.status == DeliveryStatus.PENDING and outcome.retry_in is not None

    client = Client()
    client.force_login(linked)
    centre = client.get("/notifications/").content.decode()
    assert "discord: pending" in centre and "Discord answered 503" in centre

    for _ in range(MAX_ATTEMPTS - 1):
        notification_deliver(delivery_id=delivery.pk, user_id=linked.pk)
    assert _discord_delivery(linked).status == DeliveryStatus.FAILED
    centre = client.get("/notifications/").content.decode()
    assert "discord: failed" in centre


@responses.activate
def test_closed_dms_are_refused_without_retrying(linked):
    delivery = _notify(linked)
    responses.add(_dm_channel_ok())
    responses.add(
        "POST",
        f"{API}/channels/{DM_CHANNEL}/messages",
        status=403,
        json={"message": "Cannot send messages to this user", "code": 50007},
    )
    outcome = notification_deliver(delivery_id=delivery.pk, user_id=linked.pk)
    assert outcome.status == DeliveryStatus.FAILED and outcome.retry_in is None
    assert "direct messages closed" in _discord_delivery(linked).last_error


def test_no_discord_delivery_without_a_link_or_without_the_bot(user_a, user_b, settings):
    settings.DISCORD_BOT_TOKEN = ""
    _, code = discord_link_code_issue(user=user_b)
    discord_link_redeem(discord_user_id=DISCORD_ID, code=code)
    notify(user=user_b, kind="alert.price", message="no bot")
    settings.DISCORD_BOT_TOKEN = "bot-token-123"
    notify(user=user_a, kind="alert.price", message="not linked")
    for user in (user_a, user_b):
        with tenant(user.pk):
            assert not NotificationDelivery.objects.filter(channel="discord").exists()


@responses.activate
def test_an_alert_with_discord_delivery_reaches_discord(linked, waits):
    btc = InstrumentFactory(symbol="BTC/USDT")
    alert = AlertFactory(user=linked, instrument=btc, threshold=Decimal("70000"))
    result = alert_fire(
        alert_id=alert.pk,
        user_id=linked.pk,
        occurrence_key="tick:1",
        value=Decimal("70012"),
        previous_value=Decimal("69990"),
    )
    assert result.status == "fired"
    delivery = _discord_delivery(linked)
    responses.add(_dm_channel_ok())
    responses.add("POST", f"{API}/channels/{DM_CHANNEL}/messages", json={"id": "2"})
    assert notification_deliver(delivery_id=delivery.pk, user_id=linked.pk).status == DeliveryStatus.SENT
    embed = json.loads(responses.calls[-1].request.body)["embeds"][0]
    assert "BTC/USDT" in embed["description"] and "70,000" in embed["description"]
