"""The /assistant page through the full middleware stack (RLS included), with the offline provider.

The answer's stream is read where the browser would get it: a channel subscribed to the user's WebSocket
group receives the fragments the ask view pushes while the question is being answered.
"""

from __future__ import annotations

import html
import re
import uuid
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import Client
from django.utils import timezone

from billing.choices import Feature
from billing.selectors import entitlement_remaining
from billing.services import entitlement_consume
from bot.models import Conversation, Message
from core.consumers import user_group
from core.rls import system_context, tenant
from marketdata.models import Quote
from marketdata.services import instruments_seed
from portfolios.services import portfolio_create, transaction_record

HX = {"HTTP_HX_REQUEST": "true", "HTTP_HX_CURRENT_URL": "http://testserver/assistant/"}


@pytest.fixture
def btc(db):
    instrument = {i.symbol: i for i in instruments_seed()}["BTC/USDT"]
    now = timezone.now()
    with system_context(reason="tests: the market feed's shared data"):
        Quote.objects.update_or_create(
            instrument=instrument,
            defaults={"price": Decimal("21000"), "source": "test", "at": now, "updated_at": now},
        )
    return instrument


@pytest.fixture
def holder(user_a, btc):
    """user_a holds 0.5 BTC bought at 20,000 (worth 10,500 at 21,000: +500 unrealized)."""
    with tenant(user_a.pk):
        portfolio = portfolio_create(user=user_a, name="Spot", base_currency="USDT")
        for kind, extra in (
            ("deposit", {"currency": "USDT", "quantity": Decimal("10000")}),
            ("buy", {"instrument": btc, "quantity": Decimal("0.5"), "price": Decimal("20000")}),
        ):
            transaction_record(
                user=user_a, portfolio=portfolio, kind=kind, executed_at=timezone.now(), **extra
            )
    return user_a


@pytest.fixture
def client_a(user_a) -> Client:
    client = Client()
    client.force_login(user_a)
    return client


@pytest.fixture
def client_b(user_b) -> Client:
    client = Client()
    client.force_login(user_b)
    return client


def _ask(client: Client, question: str, *, ask_id: str | None = None, htmx: bool = True, **fields):
    data = {"question": question, "ask_id": ask_id or str(uuid.uuid4()), "key": "default", **fields}
    return client.post("/assistant/ask/", data, **(HX if htmx else {}))


def _messages(user) -> list[tuple[str, str, str]]:
    with tenant(user.pk):
        return list(Message.objects.order_by("id").values_list("role", "status", "content"))


def _conversations(user) -> list[Conversation]:
    with tenant(user.pk):
        return list(Conversation.objects.order_by("id"))


def _remaining(user) -> int | None:
    with tenant(user.pk):
        return entitlement_remaining(user=user, feature=Feature.AI_QUERIES)


def _received(layer, channel) -> list[str]:
    """Everything waiting on `channel` (the sends are done when the POST has returned)."""
    import asyncio

    async def drain() -> list[str]:
        out = []
        while True:
            try:
                message = await asyncio.wait_for(layer.receive(channel), timeout=0.5)
            except TimeoutError:
                return out
            out.append(message["html"])

    return async_to_sync(drain)()


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment))


def test_the_page_requires_login(db):
    response = Client().get("/assistant/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_page_renders_with_the_form_suggestions_and_queries_left(client_a, user_a):
    response = client_a.get("/assistant/")
    assert response.status_code == 200
    page = response.content.decode()
    assert '<a href="/assistant/" aria-current="page">Assistant</a>' in page
    assert 'id="ask-form"' in page and 'name="ask_id"' in page and '<label for="id_question">' in page
    assert 'data-suggest="How is my BTC position?"' in page
    assert "<strong>25</strong> AI queries left this month" in page
    assert "No conversations yet." in page
    assert 'src="/static/js/assistant.js"' in page
    # Every other page links to it.
    assert 'href="/assistant/"' in client_a.get("/alerts/").content.decode()


def test_asking_answers_from_the_position_and_streams_it_over_the_websocket(client_a, holder):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(user_group(holder.pk), channel)
    ask_id = str(uuid.uuid4())

    response = _ask(client_a, "How is my BTC position?", ask_id=ask_id)

    assert response.status_code == 200
    body = response.content.decode()
    hex_id = uuid.UUID(ask_id).hex
    [(_, _, question), (role, status, answer)] = _messages(holder)
    assert (question, role, status) == ("How is my BTC position?", "assistant", "answered")
    assert "0.5 BTC" in answer and "10,500.00" in answer and "+500.00" in answer
    # The finished turn replaces the page's placeholder; a fresh form (a new ask id) replaces the old one.
    assert f'<div id="turn-{hex_id}" class="turn" hx-swap-oob="outerHTML">' in body
    assert "How is my BTC position?" in body and "10,500.00" in body
    assert 'id="ask-form"' in body and hex_id not in body.split('id="ask-form"')[1].split("</form>")[0]
    assert "<strong>24</strong> AI queries left this month" in body
    [conversation] = _conversations(holder)
    assert response["HX-Push-Url"] == f"/assistant/{conversation.pk}/"
    assert f'name="conversation" value="{conversation.pk}"' in body

    events = _received(layer, channel)
    assert _text("".join(e for e in events if "-text" in e)) == answer
    assert all(e.startswith(f'<template data-ws-for="pending-{hex_id}">') for e in events)
    tools = [e for e in events if f"#pending-{hex_id}-tools" in e]
    assert tools and "BTC" in _text(tools[0])
    assert events.index(tools[0]) < min(i for i, e in enumerate(events) if "-text" in e)

    page = client_a.get(f"/assistant/{conversation.pk}/").content.decode()
    assert "How is my BTC position?" in page and "10,500.00" in page
    assert "Looked up: position" in page


def test_asking_without_javascript_redirects_to_the_conversation(client_a, holder):
    response = _ask(client_a, "What is the price of BTC/USDT?", htmx=False)
    [conversation] = _conversations(holder)
    assert response.status_code == 302
    assert response["Location"].startswith(f"/assistant/{conversation.pk}/#turn-")
    page = client_a.get(response["Location"]).content.decode()
    assert "21,000.00" in page


def test_follow_up_questions_stay_in_the_conversation_and_new_ones_start_another(client_a, holder):
    _ask(client_a, "How is my BTC position?")
    [conversation] = _conversations(holder)
    _ask(client_a, "What is the price of BTC/USDT?", conversation=str(conversation.pk), key="")
    assert len(_conversations(holder)) == 1
    new_page = client_a.get("/assistant/new/").content.decode()
    key = re.search(r'name="key" value="([0-9a-f]{32})"', new_page).group(1)
    _ask(client_a, "Show my alerts", key=key)
    conversations = _conversations(holder)
    assert [c.surface_key for c in conversations] == ["web:default", f"web:{key}"]
    page = client_a.get("/assistant/").content.decode()  # the latest conversation, both in the list
    assert "Show my alerts" in page and "How is my BTC position?" in page
    assert f'href="/assistant/{conversations[1].pk}/" aria-current="page"' in page


def test_another_users_conversation_is_not_found(client_a, client_b, holder, user_b):
    _ask(client_a, "How is my BTC position?")
    [conversation] = _conversations(holder)
    assert client_b.get(f"/assistant/{conversation.pk}/").status_code == 404
    assert client_b.get(f"/assistant/{conversation.pk}/delete/").status_code == 404
    assert client_b.post(f"/assistant/{conversation.pk}/delete/").status_code == 404
    assert (
        client_b.post(f"/assistant/{conversation.pk}/confirm/", {"token": "x", "accept": "yes"}).status_code
        == 404
    )
    # Asking "into" someone else's conversation is refused too, and stores nothing anywhere.
    response = _ask(client_b, "How is my BTC position?", conversation=str(conversation.pk))
    assert response.status_code == 404
    assert _messages(user_b) == [] and len(_messages(holder)) == 2
    assert client_b.get("/assistant/").content.decode().count(f"/assistant/{conversation.pk}/") == 0


def test_deleting_a_conversation_asks_first_then_deletes_it(client_a, holder):
    _ask(client_a, "How is my BTC position?")
    [conversation] = _conversations(holder)
    confirm = client_a.get(f"/assistant/{conversation.pk}/delete/")
    assert confirm.status_code == 200
    assert "Delete this conversation?" in confirm.content.decode()
    assert _conversations(holder) == [conversation]

    response = client_a.post(f"/assistant/{conversation.pk}/delete/", follow=True)
    assert response.redirect_chain == [("/assistant/", 302)]
    assert "deleted" in response.content.decode() and "No conversations yet." in response.content.decode()
    assert _conversations(holder) == [] and _messages(holder) == []
    assert client_a.get(f"/assistant/{conversation.pk}/").status_code == 404


@pytest.mark.parametrize(
    ("question", "error"),
    [
        ("", "Type a question first."),
        ("   ", "Type a question first."),
        ("x" * 2001, "Keep the question under 2000 characters (this one has 2001)."),
    ],
)
@pytest.mark.parametrize("htmx", [True, False])
def test_bad_questions_get_a_field_error_and_cost_nothing(client_a, user_a, question, error, htmx):
    ask_id = str(uuid.uuid4())
    response = _ask(client_a, question, ask_id=ask_id, htmx=htmx)
    assert response.status_code == (200 if htmx else 400)
    body = response.content.decode()
    assert f'<p class="field-error" id="id_question_error">{html.escape(error, quote=True)}</p>' in body
    if htmx:  # the page removes the placeholder it showed for the question
        assert f'data-failed-ask="{uuid.UUID(ask_id).hex}"' in body
    assert _messages(user_a) == [] and _remaining(user_a) == 25


@pytest.mark.parametrize(
    "fields",
    [
        {"ask_id": "not-a-uuid"},
        {"ask_id": ""},
        {"key": "../../other"},
        {"conversation": "abc"},
        {"conversation": "-3"},
        {"conversation": "9" * 60},
        {"conversation": "9223372036854775808"},
        {"conversation": "1e999999999"},
        {"ask_id": "\x00"},
        {"key": "9" * 140_000},
    ],
)
def test_tampered_hidden_fields_get_an_error_above_the_form(client_a, user_a, fields):
    response = client_a.post(
        "/assistant/ask/",
        {"question": "How is my BTC position?", "ask_id": str(uuid.uuid4()), **fields},
        **HX,
    )
    assert response.status_code == 200
    assert '<div class="form-errors" role="alert">' in response.content.decode()
    assert _messages(user_a) == []


@pytest.mark.parametrize("question", ["How is my\x00 BTC position?", "é" * 140_000, "9" * 2_001])
def test_hostile_questions_are_refused_next_to_the_field(client_a, user_a, question):
    response = client_a.post("/assistant/ask/", {"question": question, "ask_id": str(uuid.uuid4())}, **HX)
    assert response.status_code == 200
    assert '<p class="field-error" id="id_question_error">' in response.content.decode()
    assert _messages(user_a) == []


def test_a_question_holding_a_huge_number_gets_a_turn_not_a_500(client_a, holder):
    response = _ask(client_a, "What is " + "9" * 1_100 + " BTC worth?")
    assert response.status_code == 200
    assert '<div class="said said-assistant' in response.content.decode()
    assert len(_messages(holder)) == 2


@pytest.mark.parametrize(
    "data", [{"token": "\x00", "accept": "yes"}, {"token": "t" * 140_000, "accept": "yes"}, {"accept": "no"}]
)
def test_hostile_confirmations_are_refused(client_a, holder, data):
    _ask(client_a, "How is my BTC position?")
    [conversation] = _conversations(holder)
    response = client_a.post(f"/assistant/{conversation.pk}/confirm/", data, **HX)
    assert response.status_code == 400
    assert client_a.post("/assistant/99999999999999999999/confirm/", data).status_code == 404


def test_a_double_submit_is_answered_and_counted_once(client_a, holder):
    ask_id = str(uuid.uuid4())
    first = _ask(client_a, "How is my BTC position?", ask_id=ask_id)
    second = _ask(client_a, "How is my BTC position?", ask_id=ask_id)
    assert first.status_code == second.status_code == 200
    assert len(_messages(holder)) == 2
    assert _remaining(holder) == 24
    turn = f'<div id="turn-{uuid.UUID(ask_id).hex}"'
    assert turn in first.content.decode() and turn in second.content.decode()


def test_over_the_plan_limit_the_answer_is_the_upgrade_message(client_a, holder):
    with tenant(holder.pk):
        for n in range(25):
            entitlement_consume(user=holder, feature=Feature.AI_QUERIES, idempotency_key=f"earlier-{n}")
    response = _ask(client_a, "How is my BTC position?")
    body = response.content.decode()
    assert response.status_code == 200
    assert "Plan limit reached" in body and "Your Free plan allows 25 AI queries a month" in body
    assert '<a class="button primary" href="/billing/">See plans and upgrade</a>' in body
    assert "<strong>0</strong> AI queries left this month" in body
    assert [status for _, status, _ in _messages(holder)] == ["asked", "over_limit"]


def test_market_commentary_is_labelled_and_answers_about_holdings_are_not(client_a, holder):
    body = _ask(client_a, "What's the regime on BTC/USDT?").content.decode()
    assert "Not investment advice." in _messages(holder)[-1][2]
    assert "Market commentary · not investment advice" in body
    body = _ask(client_a, "How is my BTC position?").content.decode()
    assert "Market commentary" not in body


def test_answers_and_questions_are_shown_as_text_never_as_markup(client_a, holder):
    body = _ask(client_a, "<img src=x onerror=alert(1)> how is my BTC position?").content.decode()
    assert "<img src=x" not in body
    assert "&lt;img src=x onerror=alert(1)&gt; how is my BTC position?" in body


def test_a_proposed_alert_waits_for_confirm_and_is_created_once(client_a, holder):
    from alerts.models import Alert

    body = _ask(client_a, "Alert me when BTC/USDT rises above 30000").content.decode()
    [conversation] = _conversations(holder)
    token = re.search(r'name="token" value="([^"]+)"', body).group(1)
    assert f'hx-post="/assistant/{conversation.pk}/confirm/"' in body
    assert ">Confirm</button>" in body and ">Cancel</button>" in body
    with tenant(holder.pk):
        assert not Alert.objects.exists()
    # Still waiting after a reload.
    assert f'value="{token}"' in client_a.get(f"/assistant/{conversation.pk}/").content.decode()

    done = client_a.post(f"/assistant/{conversation.pk}/confirm/", {"token": token, "accept": "yes"}, **HX)
    assert done.status_code == 200 and "Done:" in done.content.decode()
    again = client_a.post(f"/assistant/{conversation.pk}/confirm/", {"token": token, "accept": "yes"}, **HX)
    assert again.status_code == 200
    with tenant(holder.pk):
        assert Alert.objects.count() == 1
    assert f'value="{token}"' not in client_a.get(f"/assistant/{conversation.pk}/").content.decode()
    bad = client_a.post(f"/assistant/{conversation.pk}/confirm/", {"token": "nope", "accept": "maybe"}, **HX)
    assert bad.status_code == 400


def test_the_demo_trader_gets_answers_to_the_suggested_questions(db):
    """`make run` seeds the demo trader; every suggested question on the page is answered from the seed
    by the offline provider (the default without OPENAI_API_KEY)."""
    import io

    from django.core.management import call_command

    from accounts.management.commands.seed_demo import DEMO_TRADER
    from accounts.models import User
    from bot.views import SUGGESTIONS

    call_command("seed_demo", stdout=io.StringIO())
    with system_context(reason="tests: find the demo trader"):
        trader = User.objects.get(email=DEMO_TRADER["email"])
    client = Client()
    client.force_login(trader)
    for question in SUGGESTIONS:
        assert _ask(client, question).status_code == 200
    answers = [(status, content) for role, status, content in _messages(trader) if role == "assistant"]
    assert [status for status, _ in answers] == ["answered"] * len(SUGGESTIONS)


def test_answers_keep_paragraphs_line_breaks_and_lists_and_escape_everything():
    from bot.templatetags.assistant_tags import answer_html

    text = (
        "You have 2 alerts:\n- BTC/USDT <b>above</b> 30,000.00\n- ETH & co\n\nPrices: 0.5 BTC\n1. one\n2. two"
    )
    assert answer_html(text) == (
        "<p>You have 2 alerts:</p>"
        "<ul><li>BTC/USDT &lt;b&gt;above&lt;/b&gt; 30,000.00</li><li>ETH &amp; co</li></ul>"
        "<p>Prices: 0.5 BTC</p><ol><li>one</li><li>two</li></ol>"
    )
    assert answer_html("a\nb") == "<p>a<br>b</p>"
    assert answer_html("") == ""


def test_when_the_language_model_is_unreachable_the_turn_says_so_and_nothing_is_counted(
    client_a, holder, settings
):
    import socket

    with socket.socket() as sock:  # a port nothing listens on: the real client's connection is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings.OPENAI_API_KEY = "sk-test"
    settings.OPENAI_BASE_URL = f"http://127.0.0.1:{port}/v1"
    settings.OPENAI_MAX_RETRIES = 0
    settings.OPENAI_TIMEOUT_SECONDS = 2.0

    response = _ask(client_a, "How is my BTC position?")

    assert response.status_code == 200
    body = response.content.decode()
    assert '<span class="badge stale">Error</span>' in body
    assert "nothing was counted" in body
    assert "<strong>25</strong> AI queries left this month" in body
    assert [status for _, status, _ in _messages(holder)] == ["asked", "error"]
