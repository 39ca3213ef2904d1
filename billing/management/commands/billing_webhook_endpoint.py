"""Register a local dj-stripe webhook endpoint signed with a known secret and print its URL.

For `stripe listen --forward-to <url>` (pass the whsec_ secret it prints), benchmarks and demos.
Endpoints Stripe calls in production are created from the dj-stripe admin instead.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing.services import webhook_endpoint_ensure_local
from core.errors import DomainError


class Command(BaseCommand):
    help = "Create or update the local Stripe webhook endpoint and print its URL."

    def add_arguments(self, parser):
        parser.add_argument(
            "--secret", default=settings.STRIPE_WEBHOOK_SECRET, help="The whsec_ signing secret."
        )
        parser.add_argument("--base-url", default=settings.SITE_URL, help="Where this Nexus is reachable.")

    def handle(self, *args, secret: str, base_url: str, **options):
        try:
            endpoint = webhook_endpoint_ensure_local(secret=secret, base_url=base_url)
        except DomainError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(endpoint.url)
