from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Accounts"

    def ready(self) -> None:
        from accounts import receivers  # noqa: F401  (connects with @receiver)
        from accounts.choices import NOTIFY_ACCOUNT_SECURITY
        from core.notifications import register_kind

        register_kind(NOTIFY_ACCOUNT_SECURITY, label="Account security", default_channels={"in_app", "email"})
