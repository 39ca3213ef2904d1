"""A demo trader and a demo admin (with TOTP two-factor), so `make run` can be tried at once. Idempotent."""

from __future__ import annotations

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import User
from core.rls import system_context

DEMO_TRADER = {"email": "trader@nexus.demo", "password": "nexus-demo-trader", "display_name": "Demo Trader"}
DEMO_ADMIN = {"email": "admin@nexus.demo", "password": "nexus-demo-admin", "display_name": "Demo Admin"}
# Base32; add it to any authenticator app (or `oathtool --totp -b <secret>`) to pass the admin's 2FA.
DEMO_ADMIN_TOTP_SECRET = "NEXUSDEMOADMINTOTPSECRET"  # noqa: S105 - public demo account


def _ensure_user(*, email: str, password: str, display_name: str, staff: bool) -> tuple[User, bool]:
    user, created = User.objects.get_or_create(
        email=email, defaults={"display_name": display_name, "is_staff": staff, "is_superuser": staff}
    )
    if created:
        user.set_password(password)
        user.save(update_fields=["password"])
    EmailAddress.objects.update_or_create(
        user=user, email=email, defaults={"verified": True, "primary": True}
    )
    return user, created


class Command(BaseCommand):
    help = "Create the demo trader and the demo admin (idempotent)."

    def handle(self, *args, **options):
        # Seeding writes several tenants' rows at once: the reviewed cross-tenant path.
        with transaction.atomic(), system_context(reason="seed_demo"):
            trader, _ = _ensure_user(**DEMO_TRADER, staff=False)
            admin, _ = _ensure_user(**DEMO_ADMIN, staff=True)
            if not Authenticator.objects.filter(user=admin, type=Authenticator.Type.TOTP).exists():
                TOTP.activate(admin, DEMO_ADMIN_TOTP_SECRET)
            self.seed_domains(trader=trader)
        self.stdout.write(
            "Demo logins:\n"
            f"  trader  {DEMO_TRADER['email']} / {DEMO_TRADER['password']}\n"
            f"  admin   {DEMO_ADMIN['email']} / {DEMO_ADMIN['password']}  "
            f"(TOTP secret {DEMO_ADMIN_TOTP_SECRET}; `oathtool --totp -b {DEMO_ADMIN_TOTP_SECRET}` prints a code)"
        )

    def seed_domains(self, *, trader: User) -> None:
        """Each domain app seeds its own demo data through its services, in the order they depend on."""
        from django.apps import apps

        # INSTALLED_APPS order, except that apps marked `seed_demo_first` (billing's plan) go first.
        configs = sorted(
            apps.get_app_configs(), key=lambda config: not getattr(config, "seed_demo_first", False)
        )
        for config in configs:
            seed = getattr(config, "seed_demo", None)
            if callable(seed):
                seed(trader=trader, stdout=self.stdout)
