from django.apps import AppConfig


class AlertsConfig(AppConfig):
    name = "alerts"
    verbose_name = "Alerts"

    def ready(self) -> None:
        from alerts import receivers
        from alerts.choices import NOTIFICATION_KINDS
        from core.notifications import register_kind

        for name, (label, _, default_channels) in NOTIFICATION_KINDS.items():
            register_kind(name, label=label, default_channels=default_channels)
        receivers.connect()
        receivers.billing_counter_register()
        receivers.page_actions_register()

    def seed_demo(self, *, trader, stdout) -> None:
        from alerts.demo import seed_alerts

        seed_alerts(trader=trader, stdout=stdout)
