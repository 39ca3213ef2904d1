"""Create or update the Stripe products, prices and meter for billing/plans.py. Safe to run repeatedly."""

from django.core.management.base import BaseCommand, CommandError

from billing.catalog import plans_sync
from core.errors import DomainError


class Command(BaseCommand):
    help = "Make Stripe's products, prices and AI-query meter match billing/plans.py (idempotent)."

    def handle(self, *args, **options):
        try:
            report = plans_sync()
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        for verb, items in (
            ("created", report.created),
            ("updated", report.updated),
            ("unchanged", report.unchanged),
        ):
            for item in items:
                self.stdout.write(f"{verb:<10} {item}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Stripe catalog in sync: {len(report.created)} created, {len(report.updated)} updated, "
                f"{len(report.unchanged)} unchanged"
            )
        )
