"""What the market feed tells the rest of Nexus in its own process. Market data knows no users: other
apps subscribe here.

These are Django signals (the module is not called `signals` so that the word keeps one meaning, a
strategy's trading signal). Prices are not announced here: each published batch of ticks goes to the tick stream, which the apps'
tick consumers read in processes of their own (marketdata/tick_consumers.py, `manage.py
run_tick_consumer`).

`candle_closed` is sent IN THE FEED PROCESS (`manage.py run_marketfeed`), after the publish that stored
the candle, from a worker thread, outside any transaction, with `send_robust`: a receiver that raises is
logged and does not stop the feed or the other receivers. Receivers must be quick (enqueue a Celery
task); connect them in your AppConfig.ready():

    from marketdata.events import candle_closed

    def on_candle_closed(sender, *, symbol, candle, **kwargs): ...
    candle_closed.connect(on_candle_closed, dispatch_uid="trading.on_candle_closed")

- `candle_closed(sender, symbol: str, candle: CandleEvent)`: a one-minute candle is final (its minute
  has passed and it is stored in marketdata_candle).

`sender` is `marketdata.feed.publisher.Publisher`. See docs/market-data.md.
"""

from django.dispatch import Signal

from marketdata.types import CandleEvent

candle_closed = Signal()

__all__ = ["CandleEvent", "candle_closed"]
