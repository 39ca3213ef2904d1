from django.apps import AppConfig


class PortfoliosConfig(AppConfig):
    name = "portfolios"
    verbose_name = "Portfolios"

    def ready(self) -> None:
        from marketdata.signals import ticks_published
        from portfolios.live import on_ticks_published

        ticks_published.connect(on_ticks_published, dispatch_uid="portfolios.on_ticks_published")
