"""Re-encrypt every stored exchange secret with the newest key in TRADING_KEY_ENCRYPTION_KEYS.

Rotation: put a new Fernet key FIRST in TRADING_KEY_ENCRYPTION_KEYS (keep the old ones after it), deploy,
run this command, then drop the old keys. A secret none of the keys can decrypt stops the command with an
error and nothing is changed (one transaction).
"""

from django.core.management.base import BaseCommand, CommandError

from trading.connections.services import connection_keys_rotate
from trading.crypto import ExchangeKeyDecryptionError


class Command(BaseCommand):
    help = "Re-encrypt all exchange API secrets with the newest master key."

    def handle(self, *args, **options):
        try:
            connection_keys_rotate(stdout=self.stdout)
        except ExchangeKeyDecryptionError as error:
            raise CommandError(str(error)) from error
