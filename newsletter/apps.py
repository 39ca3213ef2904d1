from django.apps import AppConfig


class NewsletterConfig(AppConfig):
    name = "newsletter"
    verbose_name = "Newsletter"

    def ready(self) -> None:
        from newsletter import receivers

        receivers.connect()

    def seed_demo(self, *, trader, stdout) -> None:
        from newsletter.demo import newsletter_demo_seed

        newsletter_demo_seed(trader=trader, stdout=stdout)
