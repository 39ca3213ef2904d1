from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from core.errors import DomainError
from core.rls import system_context
from marketdata.models import Candle
from marketdata.selectors import candle_list, instrument_get, instrument_list, quote_latest_map
from tests.factories import QuoteFactory


def test_quote_and_tick_tables_are_unlogged_and_candles_are_not(db):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, relpersistence FROM pg_class WHERE relname IN "
            "('marketdata_quote', 'marketdata_tick', 'marketdata_candle')"
        )
        persistence = dict(cursor.fetchall())
    assert persistence == {"marketdata_quote": "u", "marketdata_tick": "u", "marketdata_candle": "p"}


def test_instrument_get_accepts_both_spellings_and_rejects_unknown(instruments):
    assert instrument_get(symbol="BTC-USDT") == instrument_get(symbol="btc/usdt") == instruments["BTC/USDT"]
    with pytest.raises(DomainError, match="Unknown instrument 'DOGE/EUR'"):
        instrument_get(symbol="DOGE/EUR")
    assert "BTC/USDC" in [i.symbol for i in instrument_list()]


def test_quote_latest_map_marks_silent_symbols_stale(instruments):
    now = timezone.now()
    QuoteFactory(instrument=instruments["BTC/USDT"], price=Decimal("101"), open_24h=Decimal("100"), at=now, updated_at=now)
    QuoteFactory(
        instrument=instruments["ETH/USDT"],
        price=Decimal("50"),
        source="simulated",
        at=now,
        updated_at=now - timedelta(seconds=instruments["ETH/USDT"].stale_after_seconds + 1),
    )
    quotes = quote_latest_map(symbols=["BTC-USDT", "ETH/USDT", "SOL/USDT"])
    assert set(quotes) == {"BTC/USDT", "ETH/USDT"}
    assert quotes["BTC/USDT"].stale is False
    assert quotes["BTC/USDT"].change_pct == Decimal("1.00")
    assert quotes["ETH/USDT"].stale is True
    assert quotes["ETH/USDT"].change_pct is None


def test_candle_list_derives_higher_timeframes_from_minutes(instruments):
    btc = instruments["BTC/USDT"]
    start = datetime(2023, 3, 1, 0, 0, tzinfo=UTC)
    # 12 minutes: open = 100 + i, high = open + 5, low = open - 5, close = open + 1, volume 1.
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Candle.objects.bulk_create(
            Candle(
                instrument=btc,
                open_time=start + timedelta(minutes=i),
                open=Decimal(100 + i),
                high=Decimal(105 + i),
                low=Decimal(95 + i),
                close=Decimal(101 + i),
                volume=Decimal("1.5"),
            )
            for i in range(12)
        )
    five = candle_list(symbol="BTC-USDT", timeframe="5m", limit=10)
    assert [b.open_time.minute for b in five] == [0, 5, 10]
    assert (five[0].open, five[0].high, five[0].low, five[0].close, five[0].volume) == (
        Decimal(100),
        Decimal(109),
        Decimal(95),
        Decimal(105),
        Decimal("7.5"),
    )
    assert (five[2].open, five[2].close, five[2].volume) == (Decimal(110), Decimal(112), Decimal("3.0"))
    assert [b.open_time.minute for b in candle_list(symbol="BTC-USDT", timeframe="5m", limit=2)] == [5, 10]
    hour = candle_list(symbol="BTC/USDT", timeframe="1h")
    assert len(hour) == 1 and hour[0].high == Decimal(116) and hour[0].low == Decimal(95)
    minutes = candle_list(symbol="BTC/USDT", limit=3)
    assert [b.open_time.minute for b in minutes] == [9, 10, 11]
    with pytest.raises(DomainError, match="Timeframe"):
        candle_list(symbol="BTC/USDT", timeframe="3m")
