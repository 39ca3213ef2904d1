"""What the market feed tells the rest of Nexus. Market data knows no users: other apps subscribe here.

These events are Django signals (the module is not called `signals` so that the word keeps one meaning,
a strategy's trading signal). Both are sent IN THE FEED PROCESS (`manage.py run_marketfeed`), after each coalesced publish
(at most a few times a second), from a worker thread, outside any transaction, with `send_robust`:
a receiver that raises is logged and does not stop the feed or the other receivers. Receivers must be
quick (evaluate an index, enqueue a Celery task); connect them in your AppConfig.ready():

    from marketdata.events import ticks_published

    def on_ticks(sender, *, ticks, **kwargs): ...
    ticks_published.connect(on_ticks, dispatch_uid="alerts.on_ticks")

- `ticks_published(sender, ticks: list[TickEvent])`: one TickEvent per symbol whose price was published
  in this round (the coalesced last price, the previously published price, the market time).
- `candle_closed(sender, symbol: str, candle: CandleEvent)`: a one-minute candle is final (its minute
  has passed and it is stored in marketdata_candle).

`sender` is `marketdata.feed.publisher.Publisher`. See docs/market-data.md.
"""

from django.dispatch import Signal

from marketdata.types import CandleEvent, TickEvent

ticks_published = Signal()
candle_closed = Signal()

__all__ = ["CandleEvent", "TickEvent", "candle_closed", "ticks_published"]
