"""The markets and regime API: listed pairs, quotes, candles by range and interval, regime readings."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from tests.factories import CandleFactory, RegimeReadingFactory
from tests.factories.marketdata import MARCH_2023
from tests.trading.conftest import set_quote

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def _problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    return response.json()


def test_listed_pairs_and_one_pair(api_a):
    listed = api_a.get("/api/v1/markets/instruments/")
    assert listed.status_code == 200
    symbols = [row["symbol"] for row in listed.json()]
    assert "BTC/USDT" in symbols and symbols == sorted(symbols)
    pair = api_a.get("/api/v1/markets/instruments/BTC-USDT/").json()
    assert (pair["symbol"], pair["slug"], pair["base"], pair["quote"]) == (
        "BTC/USDT",
        "BTC-USDT",
        "BTC",
        "USDT",
    )
    assert Decimal(pair["min_notional"]) > 0
    assert (
        "Unknown instrument" in _problem(api_a.get("/api/v1/markets/instruments/NOPE-USDT/"), 404)["detail"]
    )


def test_latest_quotes_of_chosen_pairs(api_a):
    set_quote("BTC/USDT", "20000", bid="19999", ask="20001")
    set_quote("ETH/USDT", "1500")
    quotes = api_a.get("/api/v1/markets/quotes/", {"symbols": "btc-usdt,ETH/USDT"}).json()
    assert [(q["symbol"], Decimal(q["price"])) for q in quotes] == [("BTC/USDT", 20000), ("ETH/USDT", 1500)]
    assert quotes[0]["bid"] == "19999.00000000" and quotes[0]["stale"] is False
    every = {q["symbol"] for q in api_a.get("/api/v1/markets/quotes/").json()}
    assert every == {"BTC/USDT", "ETH/USDT"}, "only pairs with a quote"
    one = api_a.get("/api/v1/markets/instruments/BTC-USDT/quote/").json()
    assert Decimal(one["ask"]) == Decimal("20001")
    assert (
        "symbol"
        in _problem(api_a.get("/api/v1/markets/quotes/", {"symbols": "BTC/USDT,NOPE/USDT"}), 400)["errors"]
    )


def test_a_pair_without_a_quote_is_a_404(api_a):
    assert "no quote yet" in _problem(api_a.get("/api/v1/markets/instruments/BTC-USDT/quote/"), 404)["detail"]


def _minutes(count: int, *, start_price: int = 20000) -> None:
    from marketdata.models import Instrument

    btc = Instrument.objects.get(symbol="BTC/USDT")
    for minute in range(count):
        CandleFactory(
            instrument=btc,
            open_time=MARCH_2023 + timedelta(minutes=minute),
            close=Decimal(start_price + minute),
            volume=Decimal("1"),
        )


def test_candles_by_range_and_interval(api_a):
    _minutes(12)
    url = "/api/v1/markets/instruments/BTC-USDT/candles/"
    latest = api_a.get(url, {"limit": 3}).json()
    assert [Decimal(bar["close"]) for bar in latest] == [20009, 20010, 20011], (
        "the newest three, oldest first"
    )
    ranged = api_a.get(url, {"start": "2023-03-01T00:02:00Z", "end": "2023-03-01T00:05:00Z"}).json()
    assert [bar["open_time"] for bar in ranged] == [
        "2023-03-01T00:02:00Z",
        "2023-03-01T00:03:00Z",
        "2023-03-01T00:04:00Z",
    ]
    five = api_a.get(url, {"interval": "5m"}).json()
    assert [
        (bar["open_time"], Decimal(bar["open"]), Decimal(bar["close"]), Decimal(bar["volume"]))
        for bar in five
    ] == [
        ("2023-03-01T00:00:00Z", 20000, 20004, 5),
        ("2023-03-01T00:05:00Z", 20005, 20009, 5),
        ("2023-03-01T00:10:00Z", 20010, 20011, 2),
    ]
    bounded = api_a.get(url, {"interval": "5m", "end": "2023-03-01T00:07:00Z"}).json()
    assert [(bar["open_time"], Decimal(bar["close"]), Decimal(bar["volume"])) for bar in bounded] == [
        ("2023-03-01T00:00:00Z", 20004, 5),
        ("2023-03-01T00:05:00Z", 20006, 2),
    ], "the bucket holding the end is cut at the end"
    later = api_a.get(url, {"interval": "5m", "start": "2023-03-01T00:06:00Z"}).json()
    assert [bar["open_time"] for bar in later] == ["2023-03-01T00:05:00Z", "2023-03-01T00:10:00Z"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"interval": "7m"}, "interval"),
        ({"limit": 0}, "limit"),
        ({"limit": 2**70}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2023-03-02T00:00:00Z", "end": "2023-03-01T00:00:00Z"}, "start"),
    ],
)
def test_bad_candle_queries_are_field_errors(api_a, query, field):
    response = api_a.get("/api/v1/markets/instruments/BTC-USDT/candles/", query)
    assert field in _problem(response, 400)["errors"]


def test_candles_of_an_unlisted_pair_are_a_404(api_a):
    _problem(api_a.get("/api/v1/markets/instruments/NOPE-USDT/candles/"), 404)


def test_regime_readings_latest_and_history(api_a):
    from marketdata.models import Instrument

    btc = Instrument.objects.get(symbol="BTC/USDT")
    hour = MARCH_2023.replace(hour=10)
    RegimeReadingFactory(instrument=btc, as_of=hour, regime="bullish")
    RegimeReadingFactory(
        instrument=btc,
        as_of=hour + timedelta(hours=1),
        regime="bearish",
        sma_slope_pct=Decimal("-3.78"),
        adx=Decimal("72"),
    )
    RegimeReadingFactory(instrument=btc, timeframe="4h", as_of=hour - timedelta(hours=4), regime="sideways")
    latest = api_a.get("/api/v1/trading/regimes/").json()
    assert [(r["symbol"], r["regime"]) for r in latest] == [("BTC/USDT", "bearish")]
    one = api_a.get("/api/v1/trading/regimes/BTC-USDT/").json()
    assert (one["regime"], one["as_of"], Decimal(one["sma_slope_pct"])) == (
        "bearish",
        "2023-03-01T11:00:00Z",
        Decimal("-3.78"),
    )
    history = api_a.get("/api/v1/trading/regimes/BTC-USDT/history/").json()["results"]
    assert [r["regime"] for r in history] == ["bearish", "bullish", "sideways"], "newest first"
    hourly = api_a.get("/api/v1/trading/regimes/BTC-USDT/history/", {"timeframe": "1h"}).json()["results"]
    assert [r["regime"] for r in hourly] == ["bearish", "bullish"]
    assert (
        "timeframe"
        in _problem(api_a.get("/api/v1/trading/regimes/BTC-USDT/history/", {"timeframe": "2h"}), 400)[
            "errors"
        ]
    )
    _problem(api_a.get("/api/v1/trading/regimes/ETH-USDT/"), 404)  # listed, not classified yet
    _problem(api_a.get("/api/v1/trading/regimes/NOPE-USDT/history/"), 404)


def test_market_data_needs_a_token(client, instruments):
    assert client.get("/api/v1/markets/instruments/").status_code in (401, 403)


def test_long_lists_render_as_drf_renders_them(api_a):
    """Quotes and candles are rendered by FlatListSerializer: the same JSON, field for field, as DRF's own
    ListSerializer (nulls, decimals to their places, times in UTC with Z), and DRF's path where a row is
    a mapping or the serializer is not flat."""
    from rest_framework import serializers

    from core.api import FlatListSerializer
    from marketdata.api.serializers import CandleOutput, QuoteOutput
    from marketdata.selectors import candle_list, quote_latest_map

    _minutes(5)
    set_quote("BTC/USDT", "20000.123456789", bid="19999.5")  # no ask: null
    set_quote("ETH/USDT", "1500")
    bars = candle_list(symbol="BTC/USDT", limit=5)
    quotes = list(quote_latest_map(symbols=["BTC/USDT", "ETH/USDT"]).values())

    def drf(serializer_class, rows):
        return [serializer_class(row).data for row in rows]

    for serializer_class, rows in ((CandleOutput, bars), (QuoteOutput, quotes)):
        fast = serializer_class(rows, many=True)
        assert isinstance(fast, FlatListSerializer)
        assert fast.data == drf(serializer_class, rows)
    by_symbol = {row["symbol"]: row for row in QuoteOutput(quotes, many=True).data}
    assert by_symbol["BTC/USDT"]["ask"] is None and by_symbol["BTC/USDT"]["price"] == "20000.12345679"
    assert CandleOutput(bars, many=True).data[0]["open_time"] == "2023-03-01T00:00:00Z"
    served = api_a.get("/api/v1/markets/instruments/BTC-USDT/candles/", {"limit": 5}).json()
    assert served == drf(CandleOutput, bars)

    # Mappings, and serializers with a method field, go through DRF's own rendering.
    as_dicts = [{"open_time": b.open_time, "open": b.open, "high": b.high, "low": b.low, "close": b.close,
                 "volume": b.volume} for b in bars]
    assert CandleOutput(as_dicts, many=True).data == drf(CandleOutput, bars)

    class WithMethod(serializers.Serializer):
        close = serializers.DecimalField(max_digits=20, decimal_places=2)
        doubled = serializers.SerializerMethodField()

        class Meta:
            list_serializer_class = FlatListSerializer

        def get_doubled(self, bar):
            return str(bar.close * 2)

    assert WithMethod(bars, many=True).data == drf(WithMethod, bars)
    assert WithMethod(bars, many=True).data[0]["doubled"] == str(bars[0].close * 2)


def test_candles_are_rendered_once_while_unchanged_and_fresh_after_the_feed_stores_more(
    api_a, django_capture_on_commit_callbacks
):
    """Every chart and program reads the same candles: a web process renders them once per change of the
    pair's candles (core.memo), and a bar the feed stores is in the very next answer."""
    from unittest import mock

    from marketdata.api import views
    from marketdata.models import Instrument
    from marketdata.services import candles_store
    from marketdata.types import CandleBar

    _minutes(3)
    url = "/api/v1/markets/instruments/BTC-USDT/candles/"
    with mock.patch.object(views, "candle_list", wraps=views.candle_list) as read:
        answers = [api_a.get(url, {"limit": 5}).json() for _ in range(4)]
        reads_unchanged = read.call_count
        bar = CandleBar(MARCH_2023 + timedelta(minutes=3), Decimal(20003), Decimal(20004), Decimal(20003),
                        Decimal("20003.5"), Decimal(1))
        with django_capture_on_commit_callbacks(execute=True):
            candles_store(rows=[(Instrument.objects.get(symbol="BTC/USDT").pk, bar)])
        after = api_a.get(url, {"limit": 5}).json()
        other_limit = api_a.get(url, {"limit": 2}).json()
    assert all(answer == answers[0] for answer in answers)
    assert [Decimal(b["close"]) for b in answers[0]] == [20000, 20001, 20002]
    assert reads_unchanged <= 2, "the unchanged candles were read and rendered for every request"
    assert [Decimal(b["close"]) for b in after] == [20000, 20001, 20002, Decimal("20003.5")]
    assert [Decimal(b["close"]) for b in other_limit] == [20002, Decimal("20003.5")]
