from django.apps import AppConfig


class PortfoliosConfig(AppConfig):
    name = "portfolios"
    verbose_name = "Portfolios"

    def ready(self) -> None:
        from portfolios.live import tick_consumer_register

        tick_consumer_register()

    def seed_demo(self, *, trader, stdout) -> None:
        from portfolios.demo import portfolios_demo_seed

        portfolios_demo_seed(trader=trader, stdout=stdout)
