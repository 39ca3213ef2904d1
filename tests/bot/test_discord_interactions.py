"""The real nextcord command tree answering interaction payloads shaped as Discord sends them, with every
REST call it makes captured at the HTTP layer (tests/bot/discord_fake.py) and checked in shape:
POST /interactions/{id}/{token}/callback with type 4 (or 5, deferred) and data.embeds, flags 64 when only the
member may see it, follow-ups on /webhooks/{application_id}/{token}."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from PIL import Image

from accounts.selectors import discord_user_resolve
from accounts.services import discord_link_code_issue, discord_link_redeem
from alerts.choices import AlertState
from alerts.models import Alert
from bot.discord import commands as bot_commands
from core.rls import tenant
from tests.bot.discord_fake import (
    APPLICATION_ID,
    command_payload,
    interact,
    option,
    run,
    running_bot,
    subcommand,
)
from tests.factories.alerts import AlertFactory
from tests.factories.marketdata import CandleFactory, InstrumentFactory, QuoteFactory
from tests.factories.portfolios import PortfolioFactory, PositionFactory
from tests.factories.trading import BotFactory
from trading.choices import BotStatus
from trading.models import Bot

ALICE = "900000000000000001"
BOB = "900000000000000002"
EPHEMERAL = 64


def _link(user, discord_id: str) -> None:
    _, code = discord_link_code_issue(user=user)
    discord_link_redeem(discord_user_id=discord_id, code=code)


def _ask(*payloads, **bot_kwargs):
    """Run the bot on these interactions; returns the fake Discord's captured calls."""

    async def scenario():
        async with running_bot(**bot_kwargs) as (bot, fake):
            for payload in payloads:
                await interact(bot, payload)
            return fake

    return run(scenario())


def _callback(fake, index: int = 0) -> dict:
    call = fake.responses()[index]
    assert call.method == "POST"
    assert call.path.startswith("/interactions/") and call.path.endswith("/callback")
    return call.json


@pytest.fixture
def btc(db):
    instrument = InstrumentFactory(symbol="BTC/USDT")
    QuoteFactory(instrument=instrument, price=Decimal("64210.50"))
    return instrument


# --- linking ---------------------------------------------------------------------------------------------


def test_link_with_a_valid_code_links_and_answers_only_the_member(user_a):
    _, code = discord_link_code_issue(user=user_a)
    payload = command_payload("link", [option("code", code)], user_id=ALICE, username="alice")
    fake = _ask(payload)
    body = _callback(fake)
    assert fake.responses()[0].path == f"/interactions/{payload['id']}/{payload['token']}/callback"
    assert body["type"] == 4 and body["data"]["flags"] == EPHEMERAL
    assert body["data"]["embeds"][0]["title"] == "Linked"
    assert discord_user_resolve(discord_user_id=ALICE).pk == user_a.pk


def test_link_with_an_expired_code_says_so(user_a):
    _, code = discord_link_code_issue(user=user_a)
    with time_machine.travel(timezone.now() + timedelta(minutes=15)):
        fake = _ask(command_payload("link", [option("code", code)], user_id=ALICE))
    body = _callback(fake)
    assert body["data"]["flags"] == EPHEMERAL
    assert "expired" in body["data"]["embeds"][0]["description"]
    assert discord_user_resolve(discord_user_id=ALICE) is None


def test_link_with_a_used_code_says_so(user_a, user_b):
    _, code = discord_link_code_issue(user=user_a)
    fake = _ask(
        command_payload("link", [option("code", code)], user_id=ALICE),
        command_payload("link", [option("code", code)], user_id=BOB, dm=True),
    )
    assert fake.embeds()[0]["title"] == "Linked"
    assert "already used" in fake.embeds()[1]["description"]
    assert discord_user_resolve(discord_user_id=BOB) is None


def test_a_discord_account_linked_to_another_user_cannot_link_again(user_a, user_b):
    _link(user_a, ALICE)
    _, code_b = discord_link_code_issue(user=user_b)
    fake = _ask(command_payload("link", [option("code", code_b)], user_id=ALICE))
    assert "already linked to another Nexus account" in fake.embeds()[0]["description"]
    assert discord_user_resolve(discord_user_id=ALICE).pk == user_a.pk


def test_unlink_from_discord(user_a):
    _link(user_a, ALICE)
    fake = _ask(command_payload("unlink", user_id=ALICE, dm=True))
    assert fake.embeds()[0]["title"] == "Unlinked"
    assert discord_user_resolve(discord_user_id=ALICE) is None


def test_an_unlinked_member_gets_the_link_url_privately(db, settings):
    settings.SITE_URL = "https://nexus.example"
    fake = _ask(command_payload("portfolio", user_id=ALICE))
    body = _callback(fake)
    assert body["data"]["flags"] == EPHEMERAL
    embed = body["data"]["embeds"][0]
    assert embed["title"] == "Link your Nexus account first"
    assert "https://nexus.example/settings/" in embed["description"]


# --- privacy and isolation -------------------------------------------------------------------------------


def test_a_member_linked_to_a_never_reads_or_changes_bs_data(user_a, user_b, btc):
    eth = InstrumentFactory(symbol="ETH/USDT")
    QuoteFactory(instrument=eth, price=Decimal("3000"))
    mine = PortfolioFactory(user=user_a, name="Alice main")
    PositionFactory(
        user=user_a, portfolio=mine, instrument=btc, quantity=Decimal("0.5"), cost_basis=Decimal("30000")
    )
    theirs = PortfolioFactory(user=user_b, name="Bob secret")
    PositionFactory(
        user=user_b, portfolio=theirs, instrument=eth, quantity=Decimal("7"), cost_basis=Decimal("14000")
    )
    bob_alert = AlertFactory(user=user_b, instrument=eth, threshold=Decimal("5000"))
    bob_bot = BotFactory(user=user_b, instrument=eth)
    _link(user_a, ALICE)
    _link(user_b, BOB)

    fake = _ask(
        command_payload("portfolio", user_id=ALICE),
        command_payload("position", [option("symbol", "ETH")], user_id=ALICE),
        command_payload("alerts", [subcommand("list")], user_id=ALICE),
        command_payload("alerts", [subcommand("pause", [option("id", bob_alert.pk, 4)])], user_id=ALICE),
        command_payload("alerts", [subcommand("remove", [option("id", bob_alert.pk, 4)])], user_id=ALICE),
        command_payload("bots", [subcommand("list")], user_id=ALICE),
        command_payload("bots", [subcommand("pause", [option("id", bob_bot.pk, 4)])], user_id=ALICE),
        command_payload("orders", [option("which", "recent")], user_id=ALICE),
        command_payload("usage", user_id=ALICE),
    )
    text = fake.text()
    assert "Alice main" in text and "0.5" in text
    assert "Bob secret" not in text and "14,000" not in text and "5,000" not in text
    assert "You hold no ETH" in text
    assert text.count("No such alert.") == 2 and "No such bot." in text
    assert all(_callback(fake, i)["data"]["flags"] == EPHEMERAL for i in range(len(fake.responses())))
    with tenant(user_b.pk):
        assert Alert.objects.get(pk=bob_alert.pk).state == AlertState.ARMED
        assert Bot.objects.get(pk=bob_bot.pk).status == BotStatus.ENABLED


def test_portfolio_goes_public_only_when_the_member_shares(user_a, btc):
    PositionFactory(user=user_a, portfolio=PortfolioFactory(user=user_a), instrument=btc)
    _link(user_a, ALICE)
    fake = _ask(
        command_payload("portfolio", user_id=ALICE),
        command_payload("portfolio", [option("share", True, 5)], user_id=ALICE),
    )
    assert _callback(fake, 0)["data"]["flags"] == EPHEMERAL
    assert not _callback(fake, 1)["data"].get("flags")


# --- commands --------------------------------------------------------------------------------------------


def test_price_is_posted_in_the_channel(btc):
    fake = _ask(command_payload("price", [option("pair", "btc-usdt")], user_id=ALICE))
    body = _callback(fake)
    assert body["type"] == 4 and not body["data"].get("flags")
    embed = body["data"]["embeds"][0]
    assert embed["title"] == "BTC/USDT"
    assert {"name": "Price", "value": "64,210.50 USDT", "inline": True} in embed["fields"]


def test_unknown_pair_answers_with_what_was_wrong(btc):
    fake = _ask(command_payload("price", [option("pair", "DOGE/XYZ")], user_id=ALICE))
    body = _callback(fake)
    assert body["data"]["flags"] == EPHEMERAL
    assert (
        "Unknown instrument 'DOGE/XYZ'. Known instruments: BTC/USDT."
        in body["data"]["embeds"][0]["description"]
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            [option("condition", "above"), option("pair", "BTC/USDT"), option("level", "lots")],
            "A price must be a number.",
        ),
        (
            [option("condition", "above"), option("pair", "BTC/USDT"), option("level", "60000")],
            "already at 64,210.5",
        ),
        (
            [
                option("condition", "move"),
                option("pair", "BTC/USDT"),
                option("level", "-5"),
                option("window", 7, 4),
            ],
            "The window must be one of 5, 15, 60, 240, 1440",
        ),
        (
            [option("condition", "below"), option("pair", "NOPE/USDT"), option("level", "1")],
            "Unknown instrument",
        ),
    ],
)
def test_alerts_add_with_bad_input_answers_with_the_error(user_a, btc, options, message):
    _link(user_a, ALICE)
    fake = _ask(command_payload("alerts", [subcommand("add", options)], user_id=ALICE))
    body = _callback(fake)
    assert body["data"]["flags"] == EPHEMERAL
    assert message in body["data"]["embeds"][0]["description"]
    with tenant(user_a.pk):
        assert not Alert.objects.exists()


def test_alerts_add_then_pause(user_a, btc):
    _link(user_a, ALICE)
    add = [option("condition", "above"), option("pair", "BTC/USDT"), option("level", "70000")]
    fake = _ask(command_payload("alerts", [subcommand("add", add)], user_id=ALICE))
    assert fake.embeds()[0]["title"] == "Alert added"
    with tenant(user_a.pk):
        alert = Alert.objects.get()
    assert alert.threshold == Decimal("70000") and alert.state == AlertState.ARMED
    fake = _ask(command_payload("alerts", [subcommand("pause", [option("id", alert.pk, 4)])], user_id=ALICE))
    assert fake.embeds()[0]["title"] == "Alert paused"
    with tenant(user_a.pk):
        assert Alert.objects.get().state == AlertState.DISABLED


def test_chart_sends_a_png_of_the_stored_candles(btc):
    for minute in range(90):
        close = Decimal(60000 + minute * 10)
        CandleFactory(
            instrument=btc,
            close=close,
            open=close - 5,
            high=close + 20,
            low=close - 25,
            volume=Decimal(1 + minute % 7),
        )
    fake = _ask(
        command_payload("chart", [option("pair", "BTC/USDT"), option("interval", "1m")], user_id=ALICE)
    )
    call = fake.responses()[0]
    assert call.path.endswith("/callback") and call.json["type"] == 4
    assert list(call.files) == ["BTC-USDT-1m.png"]
    png = call.files["BTC-USDT-1m.png"]
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and 3_000 < len(png) < 500_000
    assert Image.open(io.BytesIO(png)).size == (900, 500)
    embed = call.json["data"]["embeds"][0]
    assert embed["image"]["url"] == "attachment://BTC-USDT-1m.png"
    assert "Last 90 candles, close 60,890.00 USDT" in embed["description"]


def test_a_slow_command_is_deferred_then_answered_by_follow_up(btc):
    fake = _ask(command_payload("price", [option("pair", "BTC/USDT")], user_id=ALICE), defer_after=0)
    first, second = fake.responses()
    assert (
        first.path.endswith("/callback") and first.json["type"] == 5
    )  # DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE
    assert not (first.json.get("data") or {}).get("flags")  # market data: deferred in public
    assert second.method == "POST" and second.path.startswith(f"/webhooks/{APPLICATION_ID}/")
    assert second.json["embeds"][0]["title"] == "BTC/USDT"


def test_an_unexpected_failure_is_logged_and_answered_with_an_apology(user_a, monkeypatch):
    _link(user_a, ALICE)

    def broken(member, user):
        raise RuntimeError("boom")

    monkeypatch.setitem(bot_commands.COMMANDS, "usage", (broken, True))
    fake = _ask(command_payload("usage", user_id=ALICE))
    body = _callback(fake)
    assert body["data"]["flags"] == EPHEMERAL
    assert body["data"]["embeds"][0]["title"] == "Sorry"


def test_a_long_answer_is_split_over_several_messages(db, monkeypatch):
    text = "\n".join(f"Line {i}: " + "detail " * 30 for i in range(200))  # ~45,000 characters

    def long_help(member, user):
        from bot.discord.render import Reply

        return Reply(title="Long", description=text)

    monkeypatch.setitem(bot_commands.COMMANDS, "help", (long_help, False))
    fake = _ask(command_payload("help", user_id=ALICE))
    first, *rest = fake.responses()
    assert first.path.endswith("/callback") and first.json["type"] == 4
    assert rest and all(c.path.startswith(f"/webhooks/{APPLICATION_ID}/") for c in rest)
    bodies = [first.json["data"], *[c.json for c in rest]]
    for body in bodies:
        assert body["flags"] == EPHEMERAL
        assert len(body["embeds"]) <= 10
        assert sum(len(e["title"]) + len(e.get("description", "")) for e in body["embeds"]) <= 6000
    assert " ".join(e.get("description", "") for b in bodies for e in b["embeds"]).split() == text.split()
