"""/ask, DMs to the bot and the Confirm / Cancel buttons, through the real nextcord client and the companion
(offline provider) on real rows; Discord's side captured at the HTTP layer (tests/bot/discord_fake.py)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from accounts.services import discord_link_code_issue, discord_link_redeem
from alerts.choices import AlertState
from alerts.models import Alert
from billing.choices import Feature
from billing.selectors import entitlement_usage
from core.rls import tenant
from tests.bot.discord_fake import (
    APPLICATION_ID,
    BOT_USER,
    DM_CHANNEL_ID,
    command_payload,
    discord_user,
    interact,
    option,
    run,
    running_bot,
    snowflake,
)
from tests.factories.alerts import AlertFactory
from tests.factories.marketdata import InstrumentFactory, QuoteFactory
from tests.factories.portfolios import PortfolioFactory, PositionFactory

ALICE = "900000000000000001"
BOB = "900000000000000002"
EPHEMERAL = 64


@pytest.fixture(autouse=True)
def offline_companion(settings):
    settings.OPENAI_API_KEY = ""


def _link(user, discord_id: str) -> None:
    _, code = discord_link_code_issue(user=user)
    discord_link_redeem(discord_user_id=discord_id, code=code)


@pytest.fixture
def alice_with_btc(user_a):
    btc = InstrumentFactory(symbol="BTC/USDT")
    QuoteFactory(instrument=btc, price=Decimal("64000"))
    portfolio = PortfolioFactory(user=user_a, name="Main")
    PositionFactory(
        user=user_a,
        portfolio=portfolio,
        instrument=btc,
        quantity=Decimal("0.75"),
        cost_basis=Decimal("30000"),
    )
    _link(user_a, ALICE)
    return user_a


def _run(*payloads):
    async def scenario():
        async with running_bot() as (bot, fake):
            for payload in payloads:
                await interact(bot, payload)
            return fake

    return run(scenario())


def test_ask_defers_privately_then_answers_from_the_members_data(alice_with_btc):
    payload = command_payload("ask", [option("question", "how is my BTC position?")], user_id=ALICE)
    fake = _run(payload)
    first, *follow_ups = fake.responses()
    assert first.path == f"/interactions/{payload['id']}/{payload['token']}/callback"
    assert first.json["type"] == 5 and first.json["data"]["flags"] == EPHEMERAL
    assert follow_ups and all(
        c.path.startswith(f"/webhooks/{APPLICATION_ID}/{payload['token']}") for c in follow_ups
    )
    answer = " ".join(e.get("description", "") for e in fake.embeds())
    assert "0.75" in answer and "BTC" in answer
    assert "Not investment advice" in fake.embeds()[-1]["footer"]["text"]


def test_a_retried_interaction_counts_once(alice_with_btc):
    payload = command_payload("ask", [option("question", "what is my portfolio worth?")], user_id=ALICE)
    fake = _run(payload, dict(payload))
    answers = [e["description"] for e in fake.embeds()]
    assert len(answers) == 2 and answers[0] == answers[1]
    assert entitlement_usage(user=alice_with_btc, feature=Feature.AI_QUERIES) == 1


def test_ask_from_an_unlinked_member_gets_the_link_url(db, settings):
    settings.SITE_URL = "https://nexus.example"
    fake = _run(command_payload("ask", [option("question", "how is my BTC position?")], user_id=BOB))
    assert "https://nexus.example/settings/" in fake.embeds()[0]["description"]


def test_ask_never_answers_from_another_members_data(alice_with_btc, user_b):
    _link(user_b, BOB)
    fake = _run(command_payload("ask", [option("question", "how is my BTC position?")], user_id=BOB))
    answer = " ".join(e.get("description", "") for e in fake.embeds())
    assert "0.75" not in answer


def test_pausing_an_alert_waits_for_the_confirm_button(alice_with_btc):
    btc = InstrumentFactory(symbol="BTC/USDT")
    alert = AlertFactory(user=alice_with_btc, instrument=btc, threshold=Decimal("90000"))
    ask = command_payload("ask", [option("question", f"pause alert #{alert.pk}")], user_id=ALICE)

    async def scenario():
        async with running_bot() as (bot, fake):
            await interact(bot, ask)
            last = fake.responses()[-1].json
            buttons = [c for row in last.get("components", []) for c in row["components"]]
            assert (
                await asyncio.to_thread(_state, alice_with_btc, alert.pk) == AlertState.ARMED
            )  # nothing yet
            confirm = next(b for b in buttons if b["label"] == "Confirm")
            click = {
                "id": snowflake(),
                "application_id": APPLICATION_ID,
                "type": 3,
                "token": f"click-{snowflake()}",
                "version": 1,
                "locale": "en-US",
                "guild_id": ask["guild_id"],
                "channel_id": ask["channel_id"],
                "member": ask["member"],
                "app_permissions": ask["app_permissions"],
                "data": {"custom_id": confirm["custom_id"], "component_type": 2},
                "message": {
                    "id": snowflake(),
                    "channel_id": ask["channel_id"],
                    "type": 0,
                    "content": "",
                    "author": BOT_USER,
                    "embeds": [],
                    "attachments": [],
                    "mentions": [],
                    "mention_roles": [],
                    "mention_everyone": False,
                    "pinned": False,
                    "tts": False,
                    "timestamp": "2026-11-30T12:00:00+00:00",
                    "edited_timestamp": None,
                    "flags": 64,
                    "components": last.get("components", []),
                },
            }
            before = len(fake.responses())
            await _deliver(bot, click)
            return fake, before, buttons

    fake, before, buttons = run(scenario())
    assert {b["label"] for b in buttons} == {"Confirm", "Cancel"}
    assert all(b["type"] == 2 for b in buttons)
    done = fake.responses()[before:]
    assert done[0].json["type"] == 5 and done[0].json["data"]["flags"] == EPHEMERAL
    assert done[-1].json["embeds"][0]["title"] == "Done"
    assert _state(alice_with_btc, alert.pk) == AlertState.DISABLED


def _state(user, alert_id: int) -> str:
    with tenant(user.pk):
        return Alert.objects.get(pk=alert_id).state


async def _deliver(bot, payload: dict) -> None:
    before = set(asyncio.all_tasks())
    bot._connection.parse_interaction_create(payload)
    started = [t for t in asyncio.all_tasks() - before if t.get_name().startswith("nextcord:")]
    await asyncio.wait_for(asyncio.gather(*started), timeout=30)


def test_a_dm_to_the_bot_is_a_question_answered_in_the_dm(alice_with_btc):
    message = {
        "id": snowflake(),
        "channel_id": DM_CHANNEL_ID,
        "type": 0,
        "content": "how is my BTC position?",
        "author": discord_user(ALICE, "alice"),
        "embeds": [],
        "attachments": [],
        "mentions": [],
        "mention_roles": [],
        "mention_everyone": False,
        "pinned": False,
        "tts": False,
        "timestamp": "2026-11-30T12:00:00+00:00",
        "edited_timestamp": None,
        "flags": 0,
        "components": [],
    }

    async def scenario():
        async with running_bot() as (bot, fake):
            before = set(asyncio.all_tasks())
            bot._connection.parse_message_create(message)
            started = [t for t in asyncio.all_tasks() - before if t.get_name().startswith("nextcord:")]
            await asyncio.wait_for(asyncio.gather(*started), timeout=30)
            return fake

    fake = run(scenario())
    sent = [c for c in fake.calls if c.method == "POST" and c.path == f"/channels/{DM_CHANNEL_ID}/messages"]
    assert sent, [c.path for c in fake.calls]
    answer = " ".join(e.get("description", "") for c in sent for e in c.json["embeds"])
    assert "0.75" in answer
    assert entitlement_usage(user=alice_with_btc, feature=Feature.AI_QUERIES) == 1
