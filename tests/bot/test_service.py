"""companion_ask / companion_confirm end to end on seeded data: grounding, metering, confirmations,
conversations. The offline provider is the real default; where a test needs a model that misbehaves (an
invented number), a scripted provider implementing the same interface stands in for the model."""

from __future__ import annotations

import pytest

from alerts.models import Alert
from billing.models import UsageRecord
from bot.companion import grounding, service
from bot.companion.providers.base import ProviderError, ProviderTurn, ToolCall
from bot.companion.service import companion_ask, companion_confirm, conversation_delete
from bot.models import Conversation, Message, PendingAction
from core.errors import DomainError
from core.rls import tenant
from tests.factories import UsageRecordFactory
from trading.models import Bot


class Scripted:
    """A provider that replays turns, recording what it was sent."""

    name = "scripted"

    def __init__(self, *turns: ProviderTurn | Exception) -> None:
        self.turns = list(turns)
        self.sent: list[list[dict]] = []

    def complete(self, *, messages, tools):
        self.sent.append([dict(m) for m in messages])
        turn = self.turns.pop(0)
        if isinstance(turn, Exception):
            raise turn
        return turn


@pytest.fixture
def scripted(monkeypatch):
    def install(*turns):
        provider = Scripted(*turns)
        monkeypatch.setattr(service, "provider_get", lambda: provider)
        return provider

    return install


def ask(user, text, key, *, surface_key="web:default", events=None):
    return companion_ask(
        user=user,
        text=text,
        surface="web",
        surface_key=surface_key,
        idempotency_key=key,
        on_event=(lambda kind, data: events.append((kind, data))) if events is not None else None,
    )


def usage(user) -> int:
    with tenant(user.pk):
        return UsageRecord.objects.filter(user_id=user.pk).count()


def test_offline_answer_streams_tool_labels_then_the_verified_text(seeded_a, user_a):
    events: list[tuple[str, str]] = []
    reply = ask(user_a, "How is my BTC position?", "q-1", events=events)
    assert reply.status == "answered"
    assert reply.tools_called == ["position"]
    assert "0.4 BTC" in reply.text and "26,964.94" in reply.text and "+14,964.94" in reply.text
    assert events[0] == ("tool", "Looking up your BTC position")
    assert "".join(data for kind, data in events if kind == "delta") == reply.text
    assert reply.remaining == 24  # Free: 25 AI queries a month
    with tenant(user_a.pk):
        stored = Message.objects.get(pk=reply.message_id)
    assert stored.tool_results[0]["result"]["quantity"] == "0.4"


def test_an_invented_number_is_never_delivered_regenerated_once(seeded_a, user_a, scripted):
    call = ToolCall(id="c1", name="price", arguments={"pair": "BTC/USDT"})
    provider = scripted(
        ProviderTurn(text=None, tool_calls=[call], prompt_tokens=50, completion_tokens=5),
        ProviderTurn(
            text="BTC/USDT is at 68,000.00 and will reach 75,000.", prompt_tokens=80, completion_tokens=12
        ),
        ProviderTurn(
            text="BTC/USDT is at 67,412.35 USDT (+2.14% over 24h).", prompt_tokens=90, completion_tokens=10
        ),
    )
    events: list[tuple[str, str]] = []
    reply = ask(user_a, "price of bitcoin?", "g-1", events=events)
    assert reply.status == "answered"
    assert reply.text == "BTC/USDT is at 67,412.35 USDT (+2.14% over 24h)."
    assert "68,000" not in "".join(d for _, d in events)
    note = provider.sent[2][-1]
    assert note["role"] == "system" and "68000" in note["content"] and "75000" in note["content"]
    assert (reply.prompt_tokens, reply.completion_tokens) == (220, 27)
    assert usage(user_a) == 1


def test_an_answer_still_ungrounded_after_regenerating_is_replaced_by_a_refusal(seeded_a, user_a, scripted):
    scripted(
        ProviderTurn(text=None, tool_calls=[ToolCall(id="c1", name="position", arguments={"symbol": "BTC"})]),
        ProviderTurn(text="You hold 0.4 BTC worth about 27k, up 125%."),
        ProviderTurn(text="You hold 0.4 BTC, up 125%."),
    )
    reply = ask(user_a, "how is my btc", "g-2")
    assert reply.status == "refused"
    assert reply.text == grounding.REFUSAL
    assert grounding.numbers_in(reply.text) == []
    assert usage(user_a) == 0  # a refusal is not an answer: nothing consumed


def test_grounding_normalises_separators_zeros_signs_and_percent():
    allowed = grounding.grounded_numbers(
        tool_outputs=[{"gain": "−1,250.50", "pct": "+3.10%", "as_of": "2026-11-30 14:05 UTC"}],
        question="alert me above 70,000",
    )
    assert (
        grounding.ungrounded(
            "Down 1250.5 USDT (3.1%) as of 2026-11-30 14:05; level 70000.00", allowed=allowed
        )
        == []
    )
    assert grounding.ungrounded("1. BTC/USDT on 1D is 3.2% up", allowed=allowed) == ["3.2"]
    assert grounding.ungrounded("about 1,251", allowed=allowed) == ["1251"]


def test_a_retry_with_the_same_key_returns_the_stored_reply_and_consumes_once(seeded_a, user_a):
    first = ask(user_a, "what is my portfolio worth?", "retry-1")
    again = ask(user_a, "what is my portfolio worth?", "retry-1")
    assert again == first
    assert usage(user_a) == 1
    assert again.remaining == 24
    with tenant(user_a.pk):
        assert Message.objects.filter(user_id=user_a.pk, role="user").count() == 1


def test_over_the_limit_the_reply_is_the_upgrade_message_and_the_provider_is_not_called(
    seeded_a, user_a, scripted
):
    for n in range(25):
        UsageRecordFactory(user=user_a, idempotency_key=f"used-{n}")
    provider = scripted()  # any call would fail: no turns
    reply = ask(user_a, "price of ETH", "over-1")
    assert reply.status == "over_limit"
    assert reply.text.startswith(
        "Your Free plan allows 25 AI queries a month and you have used 25 this month."
    )
    assert "Upgrade to Pro" in reply.text
    assert reply.remaining == 0
    assert provider.sent == []
    assert usage(user_a) == 25


def test_a_provider_failure_consumes_nothing_and_may_be_retried(seeded_a, user_a, scripted):
    scripted(ProviderError("timed out", retryable=True))
    failed = ask(user_a, "price of ETH", "err-1")
    assert failed.status == "error" and usage(user_a) == 0
    scripted(ProviderTurn(text="I can only answer from your data."))
    assert ask(user_a, "price of ETH", "err-1").status == "answered"
    assert usage(user_a) == 1


def test_an_alert_is_created_only_after_the_member_confirms(seeded_a, user_a):
    reply = ask(user_a, "Alert me when BTC goes above 90,000", "alert-1")
    assert reply.status == "answered" and reply.confirmation is not None
    assert "BTC/USDT rises above 90,000.00" in reply.confirmation.summary
    with tenant(user_a.pk):
        assert Alert.objects.filter(user_id=user_a.pk).count() == 2  # the seeded two only
    done = companion_confirm(
        user=user_a, conversation_id=reply.conversation_id, token=reply.confirmation.token, accept=True
    )
    assert done.status == "confirmed" and "BTC/USDT rises above 90,000.00" in done.text
    with tenant(user_a.pk):
        assert Alert.objects.filter(user_id=user_a.pk, threshold=90000, state="armed").count() == 1
    # Confirming again changes nothing and returns the same outcome.
    twice = companion_confirm(
        user=user_a, conversation_id=reply.conversation_id, token=reply.confirmation.token, accept=True
    )
    assert twice.message_id == done.message_id
    with tenant(user_a.pk):
        assert Alert.objects.filter(user_id=user_a.pk).count() == 3


def test_cancelling_creates_nothing(seeded_a, user_a):
    reply = ask(user_a, "set an alert when ETH drops below 2500", "alert-2")
    assert reply.confirmation is not None
    cancelled = companion_confirm(
        user=user_a, conversation_id=reply.conversation_id, token=reply.confirmation.token, accept=False
    )
    assert cancelled.status == "cancelled"
    with tenant(user_a.pk):
        assert Alert.objects.filter(user_id=user_a.pk).count() == 2
        assert PendingAction.objects.get(token=reply.confirmation.token).state == "cancelled"


def test_pausing_a_bot_waits_for_confirmation(seeded_a, user_a):
    reply = ask(user_a, "pause my BTC trend bot", "bot-1")
    assert reply.tools_called == ["bots_list", "bot_pause"]
    assert reply.confirmation.summary.startswith("Pause the bot BTC trend")
    with tenant(user_a.pk):
        assert Bot.objects.get(pk=seeded_a.bots["trend"].pk).status == "enabled"
    companion_confirm(
        user=user_a, conversation_id=reply.conversation_id, token=reply.confirmation.token, accept=True
    )
    with tenant(user_a.pk):
        assert Bot.objects.get(pk=seeded_a.bots["trend"].pk).status == "paused"


def test_b_cannot_confirm_as_tokens_are_per_user(seeded_a, seeded_b, user_a, user_b):
    reply = ask(user_a, "alert me when SOL goes above 200", "alert-3")
    with pytest.raises(DomainError):
        companion_confirm(
            user=user_b, conversation_id=reply.conversation_id, token=reply.confirmation.token, accept=True
        )
    with tenant(user_a.pk):
        assert not Alert.objects.filter(threshold=200).exists()


def test_a_conversation_is_deleted_with_its_messages(seeded_a, user_a, user_b):
    reply = ask(user_a, "list my alerts", "del-1")
    with pytest.raises(DomainError):
        conversation_delete(user=user_b, conversation_id=reply.conversation_id)
    conversation_delete(user=user_a, conversation_id=reply.conversation_id)
    with tenant(user_a.pk):
        assert not Conversation.objects.filter(pk=reply.conversation_id).exists()
        assert not Message.objects.filter(conversation_id=reply.conversation_id).exists()


def test_older_turns_are_folded_into_the_summary_and_recent_ones_sent_verbatim(seeded_a, user_a, scripted):
    questions = [
        "price of BTC",
        "price of ETH",
        "list my alerts",
        "list my bots",
        "show my open orders",
        "what is RSI?",
        "price of SOL",
    ]
    for n, question in enumerate(questions):
        reply = ask(user_a, question, f"sum-{n}")
    with tenant(user_a.pk):
        conversation = Conversation.objects.get(pk=reply.conversation_id)
        assert (
            Message.objects.filter(conversation=conversation).count() == 14
        )  # every turn kept for the member
    assert conversation.summary.startswith("Asked: price of BTC\nAnswered: BTC/USDT is at 67,412.35 USDT")
    provider = scripted(ProviderTurn(text="Noted."))
    ask(user_a, "thanks", "sum-last")
    sent = provider.sent[0]
    assert "Earlier in this conversation (summary):\nAsked: price of BTC" in sent[0]["content"]
    verbatim = [m["content"] for m in sent[1:-1]]
    assert len(verbatim) == 6 and verbatim[-1].startswith("SOL/USDT is at")
    assert "price of BTC" not in verbatim


def test_conversations_are_one_per_surface_key(seeded_a, user_a):
    one = ask(user_a, "price of BTC", "k-1", surface_key="web:default")
    two = ask(user_a, "price of BTC", "k-2", surface_key="web:7f1c")
    same = ask(user_a, "price of ETH", "k-3", surface_key="web:default")
    assert one.conversation_id == same.conversation_id != two.conversation_id


def test_bad_requests_say_what_was_wrong(user_a):
    with pytest.raises(DomainError, match="Ask a question"):
        ask(user_a, "   ", "bad-1")
    with pytest.raises(DomainError, match="start with web:"):
        companion_ask(user=user_a, text="hi", surface="web", surface_key="discord:1", idempotency_key="bad-2")
    with pytest.raises(DomainError, match="Surface"):
        companion_ask(user=user_a, text="hi", surface="sms", surface_key="sms:1", idempotency_key="bad-3")


def test_the_same_request_arriving_twice_at_once_is_answered_and_counted_once(seeded_a, user_a, monkeypatch):
    import threading

    from django.db import connections

    barrier = threading.Barrier(2, timeout=10)

    class BothInFlight:
        """Answers only once both requests are past the stored-answer check."""

        name = "scripted"

        def complete(self, *, messages, tools):
            barrier.wait()
            return ProviderTurn(text="Nothing to look up.", prompt_tokens=10, completion_tokens=3)

    monkeypatch.setattr(service, "provider_get", lambda: BothInFlight())
    replies: list = []

    def run():
        try:
            replies.append(ask(user_a, "hello there", "dup-1"))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(replies) == 2 and replies[0].message_id == replies[1].message_id
    assert usage(user_a) == 1
    with tenant(user_a.pk):
        assert Message.objects.filter(user_id=user_a.pk, role="user").count() == 1
        assert Message.objects.filter(user_id=user_a.pk, role="assistant").count() == 1


def test_an_unexpected_failure_is_an_error_reply_not_an_exception(seeded_a, user_a, scripted):
    scripted(RuntimeError("a bug"))
    reply = ask(user_a, "price of ETH", "bug-1")
    assert reply.status == "error" and "nothing was counted" in reply.text
    assert usage(user_a) == 0
