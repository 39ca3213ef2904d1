"""Market pages are public and show the stored state the live updates then change."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from core.rls import system_context
from marketdata.models import Candle, Tick
from marketdata.tasks import trim_ticks
from tests.factories import QuoteFactory, UserFactory


def _quote(instrument, price: str, *, age: int = 0) -> None:
    at = timezone.now() - timedelta(seconds=age)
    QuoteFactory(
        instrument=instrument,
        price=Decimal(price),
        open_24h=Decimal(price) * Decimal("0.98"),
        volume_24h=Decimal("1234.5"),
        at=at,
        updated_at=at,
    )


def test_markets_page_is_public_and_lists_live_prices(client, instruments):
    _quote(instruments["BTC/USDT"], "23000")
    _quote(instruments["ETH/USDT"], "1600", age=600)
    response = client.get("/markets")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'ws-connect="/ws/market/?view=row&amp;symbols=' in html
    assert 'id="q-BTC-USDT-price"' in html and ">23,000.00<" in html
    assert 'id="q-BTC-USDT-change" class="q-change up">+2.04%<' in html
    assert ">1,234.50<" in html
    # ETH has been silent for ten minutes: its stale badge is shown; BTC's is not.
    assert 'id="q-ETH-USDT-state" class="badge badge-stale" data-stale-watch' in html
    eth_badge = html.split('id="q-ETH-USDT-state"')[1].split(">")[0]
    btc_badge = html.split('id="q-BTC-USDT-state"')[1].split(">")[0]
    assert " hidden" not in eth_badge and " hidden" in btc_badge
    # Instruments without any price yet still have their row, saying so.
    assert 'id="q-SOL-USDT-state" class="badge badge-stale">No data yet' in html
    assert 'href="/markets"' in html  # the nav link


def test_markets_page_looks_the_same_logged_in(client, instruments):
    client.force_login(UserFactory())
    assert client.get("/markets").status_code == 200


def test_market_detail_has_chart_data_and_a_live_ticker(client, instruments):
    btc = instruments["BTC/USDT"]
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Candle.objects.bulk_create(
            Candle(
                instrument=btc,
                open_time=start + timedelta(minutes=i),
                open=Decimal(100 + i),
                high=Decimal(110 + i),
                low=Decimal(90 + i),
                close=Decimal(101 + i),
                volume=Decimal(1),
            )
            for i in range(10)
        )
    _quote(btc, "110")
    response = client.get("/markets/BTC-USDT?tf=5m")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'ws-connect="/ws/market/?view=ticker&amp;symbols=BTC-USDT"' in html
    assert 'class="ticker ticker-BTC-USDT"' in html and 'data-t="' in html
    candles = json.loads(
        html.split('<script id="market-candles" type="application/json">')[1].split("</script>")[0]
    )
    assert [c["time"] for c in candles] == [
        int(start.timestamp()),
        int((start + timedelta(minutes=5)).timestamp()),
    ]
    assert candles[0] == {
        "time": int(start.timestamp()),
        "open": "100.00000000",
        "high": "114.00000000",
        "low": "90.00000000",
        "close": "105.00000000",
        "volume": "5.00000000",
    }
    assert "lightweight-charts.standalone.production.js" in html


def test_market_detail_spelling_unknown_symbol_and_bad_timeframe(client, instruments):
    assert client.get("/markets/btc-usdt").headers["Location"] == "/markets/BTC-USDT"
    missing = client.get("/markets/DOGE-EUR")
    assert missing.status_code == 404
    response = client.get("/markets/BTC-USDT?tf=7m", follow=True)
    assert response.status_code == 200
    assert "Unknown timeframe &#x27;7m&#x27;; showing 1m" in response.content.decode()


def test_tick_retention_trims_old_ticks_only(instruments, settings):
    settings.MARKET_TICK_RETENTION_HOURS = 24
    now = timezone.now()
    btc = instruments["BTC/USDT"]
    with system_context(reason="tests: the market feed's and signal engine's shared data"):
        Tick.objects.bulk_create(
            [
                Tick(instrument=btc, price=1, at=now - timedelta(hours=25)),
                Tick(instrument=btc, price=2, at=now - timedelta(hours=1)),
            ]
        )
    assert trim_ticks() == 1
    assert list(Tick.objects.values_list("price", flat=True)) == [Decimal(2)]


def test_tick_retention_is_scheduled(settings):
    assert settings.CELERY_BEAT_SCHEDULE["marketdata-trim-ticks"]["task"] == "marketdata.trim_ticks"
