from django.apps import AppConfig


class ResearchConfig(AppConfig):
    name = "research"
    verbose_name = "Research"

    def ready(self) -> None:
        from django.urls import reverse

        from billing.services import entitlement_counter_register
        from marketdata.annotations import register_market_action
        from research.selectors import note_published_count

        entitlement_counter_register(
            feature="published_notes", counter=lambda user: note_published_count(user=user)
        )
        register_market_action(
            "research", label="Write a note",
            url=lambda symbol: f"{reverse('research:note_create')}?symbol={symbol.replace('/', '-')}",
        )

    def seed_demo(self, *, trader, stdout) -> None:
        from research.demo import research_demo_seed

        research_demo_seed(trader=trader, stdout=stdout)
