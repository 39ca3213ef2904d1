"""Exchange API secrets at rest: Fernet tokens under a MultiFernet so master keys can rotate.

`TRADING_KEY_ENCRYPTION_KEYS` lists Fernet keys, newest first: new secrets are encrypted with the first,
any of them decrypts, and `manage.py rotate_exchange_keys` re-encrypts every stored secret with the first.
Without configured keys one is derived from SECRET_KEY (fine for development; production sets its own).
A secret that none of the keys can decrypt raises `ExchangeKeyDecryptionError` instead of failing quietly.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class ExchangeKeyDecryptionError(RuntimeError):
    """A stored secret cannot be decrypted with any configured master key (wrong or missing key)."""


def _derived_key() -> bytes:
    digest = hashlib.sha256(f"nexus.trading.exchange-keys:{settings.SECRET_KEY}".encode()).digest()
    return base64.urlsafe_b64encode(digest)


def master_keys() -> list[bytes]:
    configured = [key.strip() for key in getattr(settings, "TRADING_KEY_ENCRYPTION_KEYS", []) if key.strip()]
    return [key.encode() for key in configured] or [_derived_key()]


def _cipher() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in master_keys()])
    except ValueError as error:
        raise ImproperlyConfigured(
            "TRADING_KEY_ENCRYPTION_KEYS must hold url-safe base64 Fernet keys "
            "(generate one with cryptography.fernet.Fernet.generate_key())"
        ) from error


def secret_encrypt(plaintext: str) -> str:
    return _cipher().encrypt(plaintext.encode()).decode()


def secret_decrypt(token: str) -> str:
    if not token:
        return ""
    try:
        return _cipher().decrypt(token.encode()).decode()
    except InvalidToken as error:
        raise ExchangeKeyDecryptionError(
            "An exchange secret could not be decrypted: TRADING_KEY_ENCRYPTION_KEYS does not hold the key "
            "it was encrypted with."
        ) from error


def secret_rotate(token: str) -> str:
    """Re-encrypt under the newest master key (decryptable by any configured key)."""
    if not token:
        return ""
    try:
        return _cipher().rotate(token.encode()).decode()
    except InvalidToken as error:
        raise ExchangeKeyDecryptionError(
            "An exchange secret could not be re-encrypted: none of TRADING_KEY_ENCRYPTION_KEYS decrypts it."
        ) from error
