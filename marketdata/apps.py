from django.apps import AppConfig


class MarketdataConfig(AppConfig):
    name = "marketdata"
    verbose_name = "Market data"

    def seed_demo(self, *, trader, stdout) -> None:
        """The instrument registry; the feed (`manage.py run_marketfeed`) fills quotes and candles."""
        from marketdata.services import instruments_seed

        instruments = instruments_seed()
        stdout.write(
            f"marketdata: {len(instruments)} instruments ({', '.join(i.symbol for i in instruments)})"
        )
