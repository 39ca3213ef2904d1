from django.apps import AppConfig


class PortfoliosConfig(AppConfig):
    name = "portfolios"
    verbose_name = "Portfolios"

    def ready(self) -> None:
        from marketdata.events import ticks_published
        from portfolios.live import on_ticks_published

        ticks_published.connect(on_ticks_published, dispatch_uid="portfolios.on_ticks_published")

    def seed_demo(self, *, trader, stdout) -> None:
        from portfolios.demo import portfolios_demo_seed

        portfolios_demo_seed(trader=trader, stdout=stdout)
