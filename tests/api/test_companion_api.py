"""The AI companion over the API (the "api" surface): ask, idempotent retries, conversations (list, get,
delete), confirming a proposed change. The offline provider answers (no OpenAI key), from the asking
member's data only. Another member's conversation is a 404."""

from __future__ import annotations

from decimal import Decimal

import pytest

from alerts.choices import AlertState
from alerts.models import Alert
from billing.choices import Feature
from billing.selectors import entitlement_usage
from core.rls import tenant
from tests.api import more
from tests.api.more import post, problem, results
from tests.factories import AlertFactory, UsageRecordFactory
from tests.factories.marketdata import InstrumentFactory, QuoteFactory
from tests.factories.portfolios import PortfolioFactory, PositionFactory

pytestmark = pytest.mark.django_db

# Fixtures (tests/api/more.py)
api_a = more.api_a
api_b = more.api_b
read_only_a = more.read_only_a

ASK = "/api/v1/companion/ask/"
CONVERSATIONS = "/api/v1/companion/conversations/"


@pytest.fixture(autouse=True)
def offline_companion(settings):
    settings.OPENAI_API_KEY = ""


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
    return user_a


def test_ask_answers_from_the_members_data_and_counts_one_query(api_a, alice_with_btc):
    response = post(api_a, ASK, {"text": "how is my BTC position?"})
    assert response.status_code == 200, response.content
    reply = response.json()
    assert reply["status"] == "answered"
    assert "0.75" in reply["text"] and "BTC" in reply["text"]
    assert reply["tools_called"] and reply["confirmation"] is None
    assert reply["remaining"] == 24
    assert entitlement_usage(user=alice_with_btc, feature=Feature.AI_QUERIES) == 1
    conversations = results(api_a.get(CONVERSATIONS))
    assert [(c["id"], c["surface"], c["surface_key"]) for c in conversations] == [
        (reply["conversation_id"], "api", "api:default")
    ]


def test_a_retry_with_the_same_idempotency_key_returns_the_first_answer(api_a, alice_with_btc):
    first = post(api_a, ASK, {"text": "what is my portfolio worth?"}, **{"Idempotency-Key": "q-1"}).json()
    again = post(api_a, ASK, {"text": "what is my portfolio worth?"}, **{"Idempotency-Key": "q-1"}).json()
    assert again == first
    assert entitlement_usage(user=alice_with_btc, feature=Feature.AI_QUERIES) == 1
    other = post(api_a, ASK, {"text": "what is my portfolio worth?"}, **{"Idempotency-Key": "q-2"}).json()
    assert other["message_id"] != first["message_id"]
    assert entitlement_usage(user=alice_with_btc, feature=Feature.AI_QUERIES) == 2


def test_conversation_keys_keep_conversations_apart(api_a, alice_with_btc):
    one = post(api_a, ASK, {"text": "price of BTC", "conversation": "research-1"}).json()
    two = post(api_a, ASK, {"text": "price of BTC", "conversation": "research-2"}).json()
    assert one["conversation_id"] != two["conversation_id"]
    detail = api_a.get(f"{CONVERSATIONS}{one['conversation_id']}/").json()
    assert detail["surface_key"] == "api:research-1"
    assert [(m["role"], m["status"]) for m in detail["messages"]] == [
        ("user", "asked"),
        ("assistant", "answered"),
    ]
    assert detail["messages"][0]["content"] == "price of BTC"
    assert detail["messages"][1]["content"] == one["text"]


def test_over_the_plan_limit_the_reply_says_so_and_nothing_is_counted(api_a, user_a):
    with tenant(user_a.pk):
        for _ in range(25):  # Free includes 25 a month
            UsageRecordFactory(user=user_a)
    reply = post(api_a, ASK, {"text": "price of BTC"}).json()
    assert reply["status"] == "over_limit" and "Pro" in reply["text"]
    assert entitlement_usage(user=user_a, feature=Feature.AI_QUERIES) == 25


def test_confirming_a_proposed_change(api_a, user_a, alice_with_btc):
    with tenant(user_a.pk):
        alert = AlertFactory(
            user=user_a, instrument=InstrumentFactory(symbol="ETH/USDT"), threshold=Decimal("5000")
        )
    reply = post(api_a, ASK, {"text": f"pause alert #{alert.pk}"}).json()
    assert reply["confirmation"], reply
    with tenant(user_a.pk):
        assert Alert.objects.get(pk=alert.pk).state == AlertState.ARMED  # only proposed
    url = f"{CONVERSATIONS}{reply['conversation_id']}/confirm/"
    problem(post(api_a, url, {"token": "not-it", "accept": True}), 400)
    done = post(api_a, url, {"token": reply["confirmation"]["token"], "accept": True})
    assert done.status_code == 200 and done.json()["status"] == "confirmed", done.content
    with tenant(user_a.pk):
        assert Alert.objects.get(pk=alert.pk).state == AlertState.DISABLED
    twice = post(api_a, url, {"token": reply["confirmation"]["token"], "accept": True})
    assert twice.json()["message_id"] == done.json()["message_id"]


def test_delete_a_conversation(api_a, alice_with_btc):
    reply = post(api_a, ASK, {"text": "price of BTC"}).json()
    url = f"{CONVERSATIONS}{reply['conversation_id']}/"
    assert api_a.delete(url).status_code == 204
    problem(api_a.get(url), 404)
    assert results(api_a.get(CONVERSATIONS)) == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "text"),
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": 0}, "text"),
        ({"text": "x" * 2001}, "text"),
        ({"text": "price of BTC", "conversation": "has spaces"}, "conversation"),
        ({"text": "price of BTC", "conversation": "k" * 101}, "conversation"),
    ],
)
def test_bad_questions_are_field_errors(api_a, user_a, body, field):
    problem(post(api_a, ASK, body), 400, field)
    assert entitlement_usage(user=user_a, feature=Feature.AI_QUERIES) == 0


def test_a_long_idempotency_key_still_counts_once(api_a, user_a):
    key = {"Idempotency-Key": "k" * 250}
    first = post(api_a, ASK, {"text": "what is my portfolio worth?"}, **key).json()
    assert first["status"] == "answered"
    assert post(api_a, ASK, {"text": "what is my portfolio worth?"}, **key).json() == first
    assert entitlement_usage(user=user_a, feature=Feature.AI_QUERIES) == 1


def test_confirm_bad_input(api_a, alice_with_btc):
    reply = post(api_a, ASK, {"text": "price of BTC"}).json()
    url = f"{CONVERSATIONS}{reply['conversation_id']}/confirm/"
    problem(post(api_a, url, {"token": "x"}), 400, "accept")
    problem(post(api_a, url, {"token": 5, "accept": True}), 400, "token")


def test_another_members_conversation_is_404_and_never_answered_from(api_a, api_b, alice_with_btc):
    reply = post(api_a, ASK, {"text": "how is my BTC position?"}).json()
    url = f"{CONVERSATIONS}{reply['conversation_id']}/"
    problem(api_b.get(url), 404)
    problem(api_b.delete(url), 404)
    problem(post(api_b, f"{url}confirm/", {"token": "x", "accept": True}), 404)
    assert results(api_b.get(CONVERSATIONS)) == []
    theirs = post(api_b, ASK, {"text": "how is my BTC position?"}).json()
    assert "0.75" not in theirs["text"]
    assert theirs["conversation_id"] != reply["conversation_id"]
    assert api_a.get(url).status_code == 200


def test_a_read_token_asks_but_cannot_confirm_a_change(read_only_a, user_a, alice_with_btc):
    with tenant(user_a.pk):
        alert = AlertFactory(
            user=user_a, instrument=InstrumentFactory(symbol="ETH/USDT"), threshold=Decimal("5000")
        )
    reply = post(read_only_a, ASK, {"text": f"pause alert #{alert.pk}"})
    assert reply.status_code == 200 and reply.json()["confirmation"], reply.content
    url = f"{CONVERSATIONS}{reply.json()['conversation_id']}/confirm/"
    problem(post(read_only_a, url, {"token": reply.json()["confirmation"]["token"], "accept": True}), 403)
    with tenant(user_a.pk):
        assert Alert.objects.get(pk=alert.pk).state == AlertState.ARMED
    assert read_only_a.get(CONVERSATIONS).status_code == 200
