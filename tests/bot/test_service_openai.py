"""The companion service with the real OpenAI provider and client, against a local Chat Completions server."""

from __future__ import annotations

import json

import pytest

from bot.companion import grounding
from bot.companion.service import companion_ask
from tests.bot.openai_server import RecordedOpenAIServer


def _completion(message: dict, finish: str, prompt: int = 300, completion: int = 20) -> dict:
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1764497101,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _calls(*calls: tuple[str, dict]) -> dict:
    return _completion(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{n}",
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(args)},
                }
                for n, (name, args) in enumerate(calls)
            ],
        },
        "tool_calls",
    )


def _text(text: str) -> dict:
    return _completion({"role": "assistant", "content": text}, "stop")


@pytest.fixture
def server(settings):
    servers = []

    def start(*responses):
        recorded = RecordedOpenAIServer(list(responses))
        recorded.configure(settings)
        servers.append(recorded)
        return recorded

    yield start
    for recorded in servers:
        recorded.close()


def test_a_tool_loop_through_the_openai_client_answers_from_the_users_data(seeded_a, user_a, server):
    def answer(body):
        tool = next(m for m in body["messages"] if m["role"] == "tool")
        position = json.loads(tool["content"])
        return _text(
            f"You hold {position['quantity']} BTC worth {position['value']} USDT "
            f"({position['unrealized_pnl']} USDT unrealized)."
        )

    recorded = server(_calls(("position", {"symbol": "BTC"})), answer)
    reply = companion_ask(
        user=user_a,
        text="how is my BTC position?",
        surface="discord",
        surface_key="discord:dm:42",
        idempotency_key="interaction-1",
    )
    assert reply.status == "answered"
    assert reply.text == "You hold 0.4 BTC worth 26,964.94 USDT (+14,964.94 USDT unrealized)."
    assert (reply.prompt_tokens, reply.completion_tokens) == (600, 40)
    first, second = recorded.requests
    assert {t["function"]["name"] for t in first["tools"]} >= {"position", "price", "alert_create"}
    assert first["messages"][-1] == {"role": "user", "content": "how is my BTC position?"}
    assert second["messages"][-2]["tool_calls"][0]["function"]["name"] == "position"
    assert json.loads(second["messages"][-1]["content"])["quantity"] == "0.4"


def test_an_invented_number_from_the_model_is_not_delivered(seeded_a, user_a, server):
    recorded = server(
        _calls(("price", {"pair": "BTC/USDT"})),
        _text("BTC is at 67,412.35 and should hit 80,000 by Friday."),
        _text("BTC/USDT is at 67,412.35 USDT, +2.14% over 24h."),
    )
    reply = companion_ask(
        user=user_a, text="btc?", surface="web", surface_key="web:default", idempotency_key="web-1"
    )
    assert reply.text == "BTC/USDT is at 67,412.35 USDT, +2.14% over 24h."
    assert "80000" in recorded.requests[2]["messages"][-1]["content"]


def test_twice_ungrounded_is_refused(seeded_a, user_a, server):
    server(
        _calls(("price", {"pair": "BTC/USDT"})),
        _text("BTC will reach 80,000."),
        _text("BTC will reach 80,000 soon."),
    )
    reply = companion_ask(
        user=user_a, text="btc?", surface="web", surface_key="web:default", idempotency_key="web-2"
    )
    assert (reply.status, reply.text) == ("refused", grounding.REFUSAL)
