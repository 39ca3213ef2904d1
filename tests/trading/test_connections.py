"""Exchange connections: keys encrypted at rest, rotation, loud failure on a wrong master key, audit."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.db import connection as db

from core.models import AuditLog
from core.rls import system_context, tenant
from tests.trading.binance import BINANCE_KEY, BINANCE_SECRET, binance_connection
from trading.connections.services import connection_delete
from trading.crypto import ExchangeKeyDecryptionError, secret_decrypt
from trading.models import ExchangeConnection


def _raw_columns(pk: int) -> tuple[str, str]:
    with system_context(reason="test: read the stored ciphertext"), db.cursor() as cursor:
        cursor.execute(
            "SELECT api_key_encrypted, api_secret_encrypted FROM trading_exchangeconnection WHERE id = %s", [pk]
        )
        return cursor.fetchone()


def test_the_stored_columns_never_contain_the_key(user_a, recorded_binance):
    connection = binance_connection(user_a)
    key_column, secret_column = _raw_columns(connection.pk)
    assert BINANCE_KEY not in key_column and BINANCE_SECRET not in secret_column
    assert BINANCE_KEY[-4:] == connection.key_last_four
    assert secret_decrypt(key_column) == BINANCE_KEY
    assert secret_decrypt(secret_column) == BINANCE_SECRET


def test_rotation_re_encrypts_with_the_new_master_key(user_a, recorded_binance, settings):
    old_key = Fernet.generate_key().decode()
    settings.TRADING_KEY_ENCRYPTION_KEYS = [old_key]
    connection = binance_connection(user_a)
    before = _raw_columns(connection.pk)

    new_key = Fernet.generate_key().decode()
    settings.TRADING_KEY_ENCRYPTION_KEYS = [new_key, old_key]
    call_command("rotate_exchange_keys", stdout=open("/dev/null", "w"))  # noqa: SIM115
    after = _raw_columns(connection.pk)
    assert after != before
    # Only the new key is needed now: the old one can be retired.
    settings.TRADING_KEY_ENCRYPTION_KEYS = [new_key]
    assert secret_decrypt(after[0]) == BINANCE_KEY
    assert secret_decrypt(after[1]) == BINANCE_SECRET
    with system_context(reason="test"):
        assert AuditLog.objects.filter(action="trading.connection_keys_rotated", target_id=str(connection.pk)).exists()


def test_a_wrong_master_key_fails_loudly(user_a, recorded_binance, settings):
    settings.TRADING_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    connection = binance_connection(user_a)
    settings.TRADING_KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(ExchangeKeyDecryptionError, match="TRADING_KEY_ENCRYPTION_KEYS"):
        secret_decrypt(connection.api_key_encrypted)
    with pytest.raises(CommandError, match="could not be re-encrypted"):
        call_command("rotate_exchange_keys")


def test_a_key_with_withdrawal_permission_is_refused(user_a, recorded_binance):
    from core.errors import DomainError

    recorded_binance.restrictions["enableWithdrawals"] = True
    with pytest.raises(DomainError, match="can withdraw"):
        binance_connection(user_a)
    with tenant(user_a.pk):
        assert not ExchangeConnection.objects.exists()


def test_every_change_is_audited_without_secrets(user_a, recorded_binance):
    connection = binance_connection(user_a)
    with tenant(user_a.pk):
        connection_delete(user=user_a, connection=ExchangeConnection.objects.get(pk=connection.pk))
        actions = list(AuditLog.objects.filter(action__startswith="trading.connection").values_list("action", "after", "before"))
    assert [a for a, _, _ in actions] == ["trading.connection_deleted", "trading.connection_created"]
    dumped = repr(actions)
    assert BINANCE_KEY not in dumped and BINANCE_SECRET not in dumped
    assert BINANCE_KEY[-4:] in dumped
