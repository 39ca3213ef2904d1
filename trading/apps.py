from django.apps import AppConfig


class TradingConfig(AppConfig):
    name = "trading"
    verbose_name = "Trading"

    def ready(self) -> None:
        from marketdata.events import candle_closed, ticks_published
        from trading import receivers

        ticks_published.connect(receivers.on_ticks, dispatch_uid="trading.on_ticks")
        candle_closed.connect(receivers.on_candle_closed, dispatch_uid="trading.on_candle_closed")
        receivers.notification_kinds_register()
        receivers.billing_counters_register()
        receivers.market_annotations_register()

    def seed_demo(self, *, trader, stdout) -> None:
        from trading.demo import trading_demo_seed

        trading_demo_seed(trader=trader, stdout=stdout)
