"""Hostile input on the sockets (see tests/hostile/test_hostile_input.py for the pages, CSV and API):
query strings, subscribe messages and paths built to break parsers and the database. The answer is an
error message and a 4400 close, or an error message on a socket that stays usable, or a 4404 close for a
path nothing serves; never an exception in the consumer (daphne's 500 or close 1011)."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from channels.testing import WebsocketCommunicator
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.marketdata.conftest import hub_reset, run_async
from tests.marketdata.test_consumers import ORIGIN, application

pytestmark = pytest.mark.django_db(transaction=True)

HOSTILE = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
with_nul = st.text(max_size=8).map(lambda s: f"{s}\x00{s}")
# Percent-encoded in the URL: NUL, text past any symbol, bytes that are not UTF-8, many symbols at once.
QUERY_VALUES = st.one_of(
    with_nul.map(quote),
    st.sampled_from(["X" * 5_000, "%FF%FE", "%ED%A0%80", ",".join(["BTC-USDT"] * 51), "BTC-USDT,%00"]),
)
SYMBOLS = st.one_of(
    with_nul, st.sampled_from(["\ud800", "X" * 5_000, "", 10**400, None, [], {"a": 1}, [["BTC/USDT"]]])
)
MESSAGES = st.one_of(
    st.text(min_size=1, max_size=100),
    st.builds(lambda symbol: json.dumps({"action": "subscribe", "symbols": [symbol]}), SYMBOLS),
    st.builds(lambda symbol: json.dumps({"action": "unsubscribe", "symbols": [symbol]}), SYMBOLS),
    st.builds(lambda action: json.dumps({"action": action, "symbols": ["BTC/USDT"]}), SYMBOLS),
    st.integers(min_value=33, max_value=20_000).map(lambda n: "[" * n + "]" * n),
    st.just(json.dumps({"action": "subscribe", "symbols": ["BTC/USDT"] * 1_000})),
)


def _closed_with_an_error(path: str) -> tuple[dict, dict]:
    async def scenario():
        client = WebsocketCommunicator(application(), path, headers=ORIGIN)
        connected, _ = await client.connect()
        assert connected
        message = json.loads(await client.receive_from(timeout=5))
        closed = await client.receive_output(timeout=5)
        await client.disconnect()
        return message, closed

    hub_reset()  # a new event loop per example
    return run_async(scenario)


@pytest.mark.parametrize(
    "path", ["/ws/market/?symbols={}", "/ws/market/json/?symbols={}", "/ws/market/?view={}"]
)
@HOSTILE
@given(value=QUERY_VALUES)
def test_hostile_query_strings_get_an_error_and_a_4400_close(instruments, path, value):
    message, closed = _closed_with_an_error(path.format(value))
    assert message["type"] == "error" and message["message"]
    assert closed == {"type": "websocket.close", "code": 4400}


@HOSTILE
@given(messages=st.lists(MESSAGES, min_size=1, max_size=5))
def test_hostile_messages_get_an_error_and_the_socket_stays_usable(instruments, messages):
    async def scenario():
        client = WebsocketCommunicator(application(), "/ws/market/json/?symbols=BTC-USDT", headers=ORIGIN)
        assert (await client.connect())[0]
        await client.receive_json_from(timeout=5)  # the snapshot
        answers = []
        for text in messages:
            await client.send_to(text_data=text)
            answers.append(await client.receive_json_from(timeout=5))
        await client.send_json_to({"action": "subscribe", "symbols": ["ETH/USDT"]})
        after = await client.receive_json_from(timeout=5)
        await client.disconnect()
        return answers, after

    hub_reset()
    answers, after = run_async(scenario)
    assert all(answer["type"] == "error" and answer["message"] for answer in answers)
    assert after["type"] == "snapshot"


@HOSTILE
@given(rest=st.text(st.characters(codec="utf-8", exclude_characters="?#"), max_size=30))
def test_a_path_nothing_serves_is_closed_with_4404(db, rest):
    async def scenario():
        client = WebsocketCommunicator(application(), quote(f"/ws/nothing-here/{rest}"), headers=ORIGIN)
        connected, _ = await client.connect()
        closed = await client.receive_output(timeout=5)
        await client.disconnect()
        return connected, closed

    assert run_async(scenario) == (True, {"type": "websocket.close", "code": 4404})


def test_the_reported_cases(instruments):
    """?symbols=%00 (was a 500), a subscribe message with a NUL symbol (was close 1011), /ws/nonexistent/
    (was a 500)."""
    for path in ("/ws/market/?symbols=%00", "/ws/market/json/?symbols=%00"):
        message, closed = _closed_with_an_error(path)
        assert message == {
            "type": "error",
            "message": "The symbol contains a NUL or an invalid Unicode character.",
        }
        assert closed == {"type": "websocket.close", "code": 4400}

    async def scenario():
        market = WebsocketCommunicator(application(), "/ws/market/json/", headers=ORIGIN)
        await market.connect()
        await market.receive_json_from(timeout=5)
        await market.send_json_to({"action": "subscribe", "symbols": ["BTC\x00USDT"]})
        answer = await market.receive_json_from(timeout=5)
        await market.disconnect()
        nowhere = WebsocketCommunicator(application(), "/ws/nonexistent/", headers=ORIGIN)
        connected, _ = await nowhere.connect()
        closed = await nowhere.receive_output(timeout=5)
        return answer, connected, closed

    hub_reset()
    answer, connected, closed = run_async(scenario)
    assert answer == {
        "type": "error",
        "message": "The symbol contains a NUL or an invalid Unicode character.",
    }
    assert connected and closed == {"type": "websocket.close", "code": 4404}
