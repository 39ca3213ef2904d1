"""The OpenAI provider through the real `openai` client against a local server replaying recorded responses."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from structlog.testing import capture_logs

from bot.companion import metrics
from bot.companion.providers.base import ProviderError, ProviderTurn, ToolCall
from bot.companion.providers.openai_provider import OpenAIProvider, openai_provider_from_settings
from tests.bot.openai_server import RecordedOpenAIServer, load_recording

API_KEY = "sk-test-nexus-0123456789"
MODEL = "gpt-4o-mini"

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "position",
            "description": "The asking trader's position in one asset: quantity, value and P&L.",
            "parameters": {
                "type": "object",
                "properties": {"symbol": {"type": "string", "description": "Base asset, e.g. BTC"}},
                "required": ["symbol"],
                "additionalProperties": False,
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "price",
            "description": "The last price of a trading pair.",
            "parameters": {
                "type": "object",
                "properties": {"pair": {"type": "string", "description": "e.g. BTC/USDT"}},
                "required": ["pair"],
                "additionalProperties": False,
            },
        },
    },
]
QUESTION = [
    {"role": "system", "content": "You are Nexus's companion. Answer only from tool results."},
    {"role": "user", "content": "How is my BTC position?"},
]


def _provider(server: RecordedOpenAIServer, *, timeout: float = 5.0, retries: int = 2) -> OpenAIProvider:
    return OpenAIProvider(
        api_key=API_KEY, model=MODEL, base_url=server.base_url, timeout_seconds=timeout, max_retries=retries
    )


def _sample(name: str, labels: dict[str, str]) -> float | None:
    """One sample of the companion's own metrics (the global registry's collect() would also run the
    collectors that read the database)."""
    for collector in (metrics.AI_TOKENS, metrics.AI_PROVIDER_LATENCY, metrics.AI_PROVIDER_ERRORS):
        for family in collector.collect():
            for sample in family.samples:
                if sample.name == name and sample.labels == labels:
                    return sample.value
    return None


def _tokens(kind: str) -> float:
    value = _sample(
        "nexus_ai_tokens_total", {"provider": "openai", "model": MODEL, "kind": kind}
    )
    return value or 0.0


def _errors(reason: str) -> float:
    return (
        _sample("nexus_ai_provider_errors_total", {"provider": "openai", "reason": reason})
        or 0.0
    )


@pytest.fixture
def server_for() -> Iterator[Any]:
    servers: list[RecordedOpenAIServer] = []

    def start(*names_or_entries: Any, delay: float = 0) -> RecordedOpenAIServer:
        entries = [load_recording(item) if isinstance(item, str) else item for item in names_or_entries]
        server = RecordedOpenAIServer(entries, delay=delay)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def test_a_tool_loop_of_two_turns_sends_the_tool_calls_and_results_back_in_chat_completions_shape(server_for):
    server = server_for("tool_loop_1_tool_calls", "tool_loop_2_final")
    provider = _provider(server)
    prompt_before, completion_before = _tokens("prompt"), _tokens("completion")

    first = provider.complete(messages=QUESTION, tools=TOOLS)

    assert first.text is None
    assert first.tool_calls == [
        ToolCall(id="call_Qm3VdX8pL2sR7tY1uZ0wK9aB", name="position", arguments={"symbol": "BTC"}),
        ToolCall(id="call_H4jN6cF2gT8vB1mX5zP3qS7e", name="price", arguments={"pair": "BTC/USDT"}),
    ]
    assert (first.prompt_tokens, first.completion_tokens) == (412, 51)

    results = {
        "call_Qm3VdX8pL2sR7tY1uZ0wK9aB": {
            "symbol": "BTC",
            "quantity": "0.5",
            "value": "32125.00",
            "pnl": "1125.00",
        },
        "call_H4jN6cF2gT8vB1mX5zP3qS7e": {"pair": "BTC/USDT", "last": "64250.00"},
    }
    assistant = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in first.tool_calls
        ],
    }
    tool_messages = [
        {"role": "tool", "tool_call_id": call.id, "content": json.dumps(results[call.id])}
        for call in first.tool_calls
    ]
    second = provider.complete(messages=[*QUESTION, assistant, *tool_messages], tools=TOOLS)

    assert second == ProviderTurn(
        text="You hold 0.5 BTC. At the last price of 64,250.00 USDT it is worth 32,125.00 USDT, "
        "an unrealised P&L of +1,125.00 USDT.",
        tool_calls=[],
        prompt_tokens=538,
        completion_tokens=44,
    )
    first_request, second_request = server.requests
    for request in (first_request, second_request):
        assert request["model"] == MODEL
        assert request["tools"] == TOOLS
        assert request["tool_choice"] == "auto"
    assert first_request["messages"] == QUESTION
    assert second_request["messages"][:2] == QUESTION
    assert second_request["messages"][2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_Qm3VdX8pL2sR7tY1uZ0wK9aB",
                "type": "function",
                "function": {"name": "position", "arguments": '{"symbol": "BTC"}'},
            },
            {
                "id": "call_H4jN6cF2gT8vB1mX5zP3qS7e",
                "type": "function",
                "function": {"name": "price", "arguments": '{"pair": "BTC/USDT"}'},
            },
        ],
    }
    assert second_request["messages"][3:] == [
        {
            "role": "tool",
            "tool_call_id": "call_Qm3VdX8pL2sR7tY1uZ0wK9aB",
            "content": '{"symbol": "BTC", "quantity": "0.5", "value": "32125.00", "pnl": "1125.00"}',
        },
        {
            "role": "tool",
            "tool_call_id": "call_H4jN6cF2gT8vB1mX5zP3qS7e",
            "content": '{"pair": "BTC/USDT", "last": "64250.00"}',
        },
    ]
    assert all(exchange.path == "/v1/chat/completions" for exchange in server.exchanges)
    assert all(exchange.headers["authorization"] == f"Bearer {API_KEY}" for exchange in server.exchanges)
    assert _tokens("prompt") - prompt_before == 412 + 538
    assert _tokens("completion") - completion_before == 51 + 44


def test_without_tools_no_tool_choice_is_sent(server_for):
    server = server_for("tool_loop_2_final")

    turn = _provider(server).complete(messages=QUESTION, tools=[])

    assert turn.text.startswith("You hold 0.5 BTC.")
    assert "tools" not in server.requests[0] and "tool_choice" not in server.requests[0]


def test_a_429_with_retry_after_is_retried_after_the_wait_and_the_tokens_are_counted_once(server_for):
    server = server_for("rate_limited_429", "tool_loop_2_final")
    prompt_before, completion_before = _tokens("prompt"), _tokens("completion")

    turn = _provider(server, retries=2).complete(messages=QUESTION, tools=TOOLS)

    assert turn.text.startswith("You hold 0.5 BTC.")
    assert (turn.prompt_tokens, turn.completion_tokens) == (538, 44)
    rate_limited, answered = server.exchanges
    assert (rate_limited.status, answered.status) == (429, 200)
    # Retry-After: 1 was honoured (the client's own backoff would have waited at most 0.5 s).
    assert answered.received_at - rate_limited.received_at >= 0.95
    assert answered.headers["x-stainless-retry-count"] == "1"
    assert answered.body == rate_limited.body
    assert _tokens("prompt") - prompt_before == 538
    assert _tokens("completion") - completion_before == 44


def test_a_429_that_outlasts_the_retries_is_a_retryable_error(server_for):
    server = server_for("rate_limited_429", "rate_limited_429")
    before = _errors("rate_limited")

    with pytest.raises(ProviderError, match="rate limiting") as raised:
        _provider(server, retries=1).complete(messages=QUESTION, tools=TOOLS)

    assert raised.value.retryable is True
    assert len(server.requests) == 2
    assert _errors("rate_limited") - before == 1


def test_a_used_up_quota_is_not_retryable(server_for):
    server = server_for("insufficient_quota_429")

    with pytest.raises(ProviderError, match="quota") as raised:
        _provider(server, retries=0).complete(messages=QUESTION, tools=TOOLS)

    assert raised.value.retryable is False


def test_a_server_slower_than_the_timeout_is_a_retryable_error_without_hanging(server_for):
    server = server_for("tool_loop_2_final", delay=3.0)
    before = _sample(
        "nexus_ai_provider_latency_seconds_count", {"provider": "openai", "outcome": "timeout"}
    )

    started = time.monotonic()
    with pytest.raises(ProviderError, match="did not answer within 0.5 s") as raised:
        _provider(server, timeout=0.5, retries=0).complete(messages=QUESTION, tools=TOOLS)
    elapsed = time.monotonic() - started

    assert raised.value.retryable is True
    assert 0.45 <= elapsed < 2.0
    assert len(server.requests) == 1
    after = _sample(
        "nexus_ai_provider_latency_seconds_count", {"provider": "openai", "outcome": "timeout"}
    )
    assert after - (before or 0) == 1


def test_a_500_is_retried_then_a_retryable_error(server_for):
    server = server_for("server_error_500", "server_error_500")

    with pytest.raises(ProviderError, match="HTTP 500") as raised:
        _provider(server, retries=1).complete(messages=QUESTION, tools=TOOLS)

    assert raised.value.retryable is True
    assert [exchange.status for exchange in server.exchanges] == [500, 500]


def test_a_500_then_success_answers(server_for):
    server = server_for("server_error_500", "tool_loop_2_final")

    turn = _provider(server, retries=1).complete(messages=QUESTION, tools=TOOLS)

    assert turn.text.startswith("You hold 0.5 BTC.")


def test_a_refused_key_is_not_retryable_and_not_retried(server_for):
    server = server_for("invalid_api_key_401", "tool_loop_2_final")

    with pytest.raises(ProviderError, match="check OPENAI_API_KEY") as raised:
        _provider(server, retries=2).complete(messages=QUESTION, tools=TOOLS)

    assert raised.value.retryable is False
    assert len(server.requests) == 1
    assert "sk-" not in str(raised.value)


def test_an_unreachable_server_is_a_retryable_error():
    server = RecordedOpenAIServer([])
    base_url = server.base_url
    server.close()  # nothing listens on that port any more
    provider = OpenAIProvider(
        api_key=API_KEY, model=MODEL, base_url=base_url, timeout_seconds=2, max_retries=0
    )

    with pytest.raises(ProviderError, match="could not be reached") as raised:
        provider.complete(messages=QUESTION, tools=TOOLS)

    assert raised.value.retryable is True


def test_tool_arguments_that_are_not_json_make_a_retryable_error_naming_the_tool(server_for):
    server = server_for("malformed_tool_arguments")
    before = _errors("malformed_tool_arguments")

    with pytest.raises(
        ProviderError, match="called position with arguments that are not valid JSON"
    ) as raised:
        _provider(server).complete(messages=QUESTION, tools=TOOLS)

    assert raised.value.retryable is True
    assert _errors("malformed_tool_arguments") - before == 1


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [('["BTC"]', None), ('"BTC"', None), ("", {}), ("  ", {}), ('{"symbol": "ETH"}', {"symbol": "ETH"})],
)
def test_tool_arguments_must_be_a_json_object_and_empty_means_none(server_for, arguments, expected):
    recording = load_recording("malformed_tool_arguments")
    recording["body"]["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"] = arguments
    server = server_for(recording)

    if expected is None:
        with pytest.raises(ProviderError, match="not a JSON object"):
            _provider(server).complete(messages=QUESTION, tools=TOOLS)
    else:
        turn = _provider(server).complete(messages=QUESTION, tools=TOOLS)
        assert turn.tool_calls == [
            ToolCall(id="call_Zx1Cv2Bn3Mq4Wq5Er6Ty7Ui8O", name="position", arguments=expected)
        ]


def test_an_invented_number_comes_back_unchanged_for_the_service_to_ground(server_for):
    server = server_for("final_with_invented_number")

    turn = _provider(server).complete(messages=QUESTION, tools=TOOLS)

    assert turn.text == "Your BTC position is worth $99,999."
    assert turn.tool_calls == []


def test_an_answer_with_no_choices_or_no_content_is_an_error(server_for):
    empty = load_recording("tool_loop_2_final")
    empty["body"]["choices"][0]["message"]["content"] = None
    no_choices = load_recording("tool_loop_2_final")
    no_choices["body"]["choices"] = []
    server = server_for(empty, no_choices)
    provider = _provider(server)

    with pytest.raises(ProviderError, match="neither text nor tool calls") as raised:
        provider.complete(messages=QUESTION, tools=TOOLS)
    assert raised.value.retryable is True
    with pytest.raises(ProviderError, match="no choices"):
        provider.complete(messages=QUESTION, tools=TOOLS)


def test_a_bad_request_is_not_retryable(server_for):
    server = server_for(
        {
            "status": 400,
            "body": {
                "error": {
                    "message": "This model's maximum context length is 128000 tokens.",
                    "type": "invalid_request_error",
                    "param": "messages",
                    "code": "context_length_exceeded",
                }
            },
        }
    )

    with pytest.raises(ProviderError, match="HTTP 400: This model's maximum context length") as raised:
        _provider(server).complete(messages=QUESTION, tools=TOOLS)

    assert raised.value.retryable is False


def test_an_answer_without_usage_counts_no_tokens(server_for):
    recording = load_recording("tool_loop_2_final")
    del recording["body"]["usage"]  # some OpenAI-compatible servers leave it out
    server = server_for(recording)

    turn = _provider(server).complete(messages=QUESTION, tools=TOOLS)

    assert (turn.prompt_tokens, turn.completion_tokens) == (0, 0)


def test_the_factory_reads_the_settings_and_reuses_one_provider_per_configuration(server_for, settings):
    server = server_for("final_with_invented_number")
    server.configure(settings, model="gpt-4.1-mini", timeout_seconds=7, max_retries=0)

    provider = openai_provider_from_settings()

    assert provider is openai_provider_from_settings()
    assert (provider.name, provider.model, provider.timeout_seconds, provider.max_retries) == (
        "openai",
        "gpt-4.1-mini",
        7.0,
        0,
    )
    assert provider.complete(messages=QUESTION, tools=TOOLS).text == "Your BTC position is worth $99,999."
    assert server.requests[0]["model"] == "gpt-4.1-mini"


def test_the_factory_defaults_to_openai_and_refuses_a_missing_key(settings):
    settings.OPENAI_API_KEY = "sk-another"
    settings.OPENAI_BASE_URL = ""
    assert openai_provider_from_settings().base_url == "https://api.openai.com/v1"

    settings.OPENAI_API_KEY = ""
    with pytest.raises(ProviderError, match="OPENAI_API_KEY") as raised:
        openai_provider_from_settings()
    assert raised.value.retryable is False


def test_the_metrics_survive_a_reload_of_their_module():
    tokens, latency, errors = metrics.AI_TOKENS, metrics.AI_PROVIDER_LATENCY, metrics.AI_PROVIDER_ERRORS

    reloaded = importlib.reload(metrics)

    assert reloaded.AI_TOKENS is tokens
    assert reloaded.AI_PROVIDER_LATENCY is latency
    assert reloaded.AI_PROVIDER_ERRORS is errors


def test_the_recorded_server_says_when_it_has_no_answer_left(server_for):
    server = server_for()

    with pytest.raises(ProviderError, match="HTTP 500") as raised:
        _provider(server, retries=0).complete(messages=QUESTION, tools=TOOLS)

    assert "only 0 recorded" in raised.value.__cause__.message


def test_fifty_concurrent_questions_share_one_provider_and_each_gets_its_own_answer():
    """The recorded server answers from the conversation (cycle=True, a callable), as a benchmark uses it."""
    calls, final = load_recording("tool_loop_1_tool_calls"), load_recording("tool_loop_2_final")

    def answer(body: dict[str, Any]) -> dict[str, Any]:
        return final if body["messages"][-1]["role"] == "tool" else calls

    with RecordedOpenAIServer([answer], delay=0.3, cycle=True) as server:
        provider = _provider(server, retries=0)

        def ask(number: int) -> ProviderTurn:
            question = [
                *QUESTION[:1],
                {"role": "user", "content": f"Question {number}: how is my BTC position?"},
            ]
            turn = provider.complete(messages=question, tools=TOOLS)
            assistant = {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": c.id,
                        "type": "function",
                        "function": {"name": c.name, "arguments": json.dumps(c.arguments)},
                    }
                    for c in turn.tool_calls
                ],
            }
            results = [{"role": "tool", "tool_call_id": c.id, "content": "{}"} for c in turn.tool_calls]
            return provider.complete(messages=[*question, assistant, *results], tools=TOOLS)

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=50) as pool:
            turns = list(pool.map(ask, range(50)))
        elapsed = time.monotonic() - started

    assert all(turn.text.startswith("You hold 0.5 BTC.") for turn in turns)
    assert len(server.requests) == 100
    asked = sorted(
        body["messages"][1]["content"] for body in server.requests if body["messages"][-1]["role"] == "user"
    )
    assert asked == sorted(f"Question {n}: how is my BTC position?" for n in range(50))
    assert elapsed < 10, f"two 0.3 s turns for 50 concurrent questions took {elapsed:.1f} s: not concurrent"


def test_each_turn_is_logged_with_its_tokens_and_tools_but_never_the_conversation(server_for):
    server = server_for("tool_loop_1_tool_calls", "invalid_api_key_401")
    provider = _provider(server, retries=0)

    with capture_logs() as logs:
        provider.complete(messages=QUESTION, tools=TOOLS)
        with pytest.raises(ProviderError):
            provider.complete(messages=QUESTION, tools=TOOLS)

    turn, failed = (entry for entry in logs if entry["event"].startswith("companion."))
    assert turn["event"] == "companion.provider_turn"
    assert (turn["model"], turn["prompt_tokens"], turn["completion_tokens"]) == (MODEL, 412, 51)
    assert turn["tool_calls"] == ["position", "price"]
    assert turn["request_id"] == "req_recorded_1"
    assert failed["event"] == "companion.provider_failed"
    assert (failed["reason"], failed["status"], failed["retryable"]) == ("auth", 401, False)
    assert "BTC position" not in repr(logs) and API_KEY not in repr(logs)


@pytest.mark.parametrize(
    "body",
    [
        {"id": "chatcmpl-x", "object": "chat.completion"},
        {"id": "chatcmpl-x", "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop"}]},
        {"error": "upstream model is loading"},
    ],
    ids=["no-choices-key", "no-message", "error-with-200"],
)
def test_a_200_that_is_not_a_chat_completion_is_an_error_not_a_crash(server_for, body):
    server = server_for({"status": 200, "body": body})

    with pytest.raises(ProviderError, match="not .*chat completion|no choices"):
        _provider(server).complete(messages=QUESTION, tools=TOOLS)


@pytest.mark.parametrize("status", [200, 502])
def test_a_page_that_is_not_json_is_an_error_not_a_crash(server_for, status):
    server = server_for({"status": status, "raw": "<html><body>Bad gateway</body></html>"})

    with pytest.raises(ProviderError) as raised:
        _provider(server, retries=0).complete(messages=QUESTION, tools=TOOLS)

    assert raised.value.retryable is (status == 502)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"api_key": ""}, "needs an API key"),
        ({"model": ""}, "needs a model name"),
        ({"timeout_seconds": 0}, "OPENAI_TIMEOUT_SECONDS must be more than 0"),
        ({"max_retries": -1}, "OPENAI_MAX_RETRIES must be 0 or more"),
    ],
)
def test_a_bad_configuration_is_refused_with_the_setting_to_fix(options, message):
    with pytest.raises(ProviderError, match=message) as raised:
        OpenAIProvider(**{"api_key": API_KEY, "model": MODEL, **options})
    assert raised.value.retryable is False


def test_a_custom_tool_call_is_refused_since_only_functions_are_offered(server_for):
    recording = load_recording("tool_loop_1_tool_calls")
    recording["body"]["choices"][0]["message"]["tool_calls"] = [
        {"id": "call_custom1", "type": "custom", "custom": {"name": "shell", "input": "rm -rf /"}}
    ]
    server = server_for(recording)

    with pytest.raises(ProviderError, match="'custom' tool call; only functions are offered"):
        _provider(server).complete(messages=QUESTION, tools=TOOLS)


def test_a_reply_cut_at_the_token_limit_is_returned_and_logged(server_for):
    recording = load_recording("tool_loop_2_final")
    recording["body"]["choices"][0]["message"]["content"] = "You hold 0.5 BTC. At the last price of"
    recording["body"]["choices"][0]["finish_reason"] = "length"
    server = server_for(recording)

    with capture_logs() as logs:
        turn = _provider(server).complete(messages=QUESTION, tools=TOOLS)

    assert turn.text == "You hold 0.5 BTC. At the last price of"
    assert "companion.provider_truncated" in [entry["event"] for entry in logs]
