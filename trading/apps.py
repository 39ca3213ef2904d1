from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"
    verbose_name = "Trading"

    def ready(self) -> None:
        from marketdata.events import candle_closed
        from trading import receivers

        candle_closed.connect(receivers.on_candle_closed, dispatch_uid="trading.on_candle_closed")
        receivers.tick_consumer_register()
        receivers.notification_kinds_register()
        receivers.billing_counters_register()
        receivers.market_annotations_register()
        from core.metrics import collectors_register
        from trading.metrics import BreakerCollector

        collectors_register(BreakerCollector())

    def seed_demo(self, *, trader, stdout) -> None:
        from trading.demo import trading_demo_seed

        trading_demo_seed(trader=trader, stdout=stdout)
