from django.apps import AppConfig


class AutomationConfig(AppConfig):
    name = "automation"
    verbose_name = "Automation"

    def ready(self) -> None:
        from automation import receivers
        from automation.choices import NOTIFICATION_KINDS
        from core.notifications import register_kind

        for name, label in NOTIFICATION_KINDS.items():
            register_kind(name, label=label)
        receivers.connect()
        receivers.billing_counters_register()

    def seed_demo(self, *, trader, stdout) -> None:
        from automation.demo import seed_rules

        seed_rules(trader=trader, stdout=stdout)
