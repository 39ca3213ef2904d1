"""Writes of exchange connections: validated with the venue, secrets encrypted, every change audited."""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from core.audit import audit_record
from core.errors import DomainError
from core.rls import system_context
from trading.choices import OPEN_ORDER_STATUSES, VENUES_WITH_PASSPHRASE, Venue
from trading.common import request_actor
from trading.crypto import secret_encrypt, secret_rotate
from trading.entitlements import trading_entitlement_check
from trading.exchanges.base import Credentials, ExchangeRejected, ExchangeUnavailable, OrderStatusUnknown
from trading.exchanges.registry import adapter_class
from trading.models import ExchangeConnection


def _last_four(value: str) -> str:
    return value[-4:] if len(value) >= 4 else ""


@transaction.atomic
def connection_create(
    *,
    user,
    label: str,
    venue: str,
    api_key: str = "",
    api_secret: str = "",
    passphrase: str = "",
    sandbox: bool = False,
    confirmed_no_withdrawal: bool = False,
    request: HttpRequest | None = None,
) -> ExchangeConnection:
    """Validate the key with the venue, refuse withdrawal rights, store the secrets encrypted, audit."""
    label = (label or "").strip()
    if not label:
        raise DomainError("Give the connection a name.", field="label")
    if venue not in Venue.values:
        raise DomainError("Choose a supported venue.", field="venue")
    if ExchangeConnection.objects.filter(user=user, label=label).exists():
        raise DomainError("You already have a connection with that name.", field="label")
    adapter_type = adapter_class(venue)
    if adapter_type.counts_against_plan:
        trading_entitlement_check(user=user, feature="exchange_connections")
    connection = ExchangeConnection(user=user, label=label, venue=venue, sandbox=sandbox)
    credentials = None
    if adapter_type.needs_credentials:
        credentials = Credentials(api_key=api_key.strip(), secret=api_secret.strip(), passphrase=passphrase.strip())
        if not credentials.api_key or not credentials.secret:
            raise DomainError("Enter the API key and its secret.", field="api_key")
        if venue in VENUES_WITH_PASSPHRASE and not credentials.passphrase:
            raise DomainError("This venue's API keys come with a passphrase; enter it too.", field="passphrase")
    adapter = adapter_type.for_connection(connection, credentials=credentials)
    try:
        permissions = adapter.validate_credentials()
        fees = adapter.fee_schedule(symbol="")
    except (ExchangeRejected, ExchangeUnavailable, OrderStatusUnknown) as error:
        raise DomainError(f"The venue did not accept this key: {error}", field="api_key") from error
    if permissions.can_withdraw:
        raise DomainError(
            "This key can withdraw funds. Nexus never needs that: create a key with trading and reading "
            "permissions only, and restrict it to Nexus's IP address.",
            field="api_key",
        )
    if not permissions.can_trade:
        raise DomainError("This key cannot trade. Enable spot trading on the key.", field="api_key")
    if permissions.ip_restricted is None and not confirmed_no_withdrawal:
        raise DomainError(
            "This venue does not report key permissions. Confirm the key has no withdrawal permission.",
            field="confirmed_no_withdrawal",
        )
    if credentials is not None:
        connection.api_key_encrypted = secret_encrypt(credentials.api_key)
        connection.api_secret_encrypted = secret_encrypt(credentials.secret)
        connection.passphrase_encrypted = secret_encrypt(credentials.passphrase) if credentials.passphrase else ""
        connection.key_last_four = _last_four(credentials.api_key)
    connection.can_withdraw = permissions.can_withdraw
    connection.ip_restricted = permissions.ip_restricted
    connection.maker_fee, connection.taker_fee = fees.maker, fees.taker
    connection.validated_at = timezone.now()
    connection.save()
    audit_record(
        action="trading.connection_created",
        user=user,
        actor=request_actor(request, user),
        target=connection,
        after=_connection_summary(connection),
        request=request,
    )
    return connection


def _connection_summary(connection: ExchangeConnection) -> dict:
    """What the audit log keeps about a connection: never a secret, only the key's last four characters."""
    return {
        "label": connection.label,
        "venue": connection.venue,
        "sandbox": connection.sandbox,
        "key_last_four": connection.key_last_four,
        "status": connection.status,
        "taker_fee": connection.taker_fee,
    }


@transaction.atomic
def connection_delete(*, user, connection: ExchangeConnection, request: HttpRequest | None = None) -> None:
    if connection.user_id != user.pk:
        raise DomainError("That connection is not yours.")
    if connection.bots.exists():
        raise DomainError("Bots use this connection; delete or move them first.")
    if connection.orders.filter(status__in=OPEN_ORDER_STATUSES).exists():
        raise DomainError("This connection has open orders; cancel them first.")
    before = _connection_summary(connection)
    if connection.orders.exists():
        # Order history must survive: keep the row, wipe the secrets, disable it.
        connection.api_key_encrypted = connection.api_secret_encrypted = connection.passphrase_encrypted = ""
        connection.status = "disabled"
        connection.save()
        action = "trading.connection_disabled"
    else:
        connection.delete()
        action = "trading.connection_deleted"
    audit_record(action=action, user=user, actor=request_actor(request, user), before=before, request=request)


def connection_keys_rotate(*, stdout=None) -> int:
    """Re-encrypt every stored exchange secret with the newest master key (cross-tenant, audited)."""
    rotated = 0
    with system_context(reason="rotate exchange key encryption"):
        connections = list(ExchangeConnection.objects.select_for_update().exclude(api_key_encrypted=""))
        for connection in connections:
            connection.api_key_encrypted = secret_rotate(connection.api_key_encrypted)
            connection.api_secret_encrypted = secret_rotate(connection.api_secret_encrypted)
            connection.passphrase_encrypted = secret_rotate(connection.passphrase_encrypted)
            connection.save(update_fields=["api_key_encrypted", "api_secret_encrypted", "passphrase_encrypted"])
            audit_record(
                action="trading.connection_keys_rotated",
                user=connection.user,
                actor_label="manage.py rotate_exchange_keys",
                target=connection,
                after={"key_last_four": connection.key_last_four},
            )
            rotated += 1
    if stdout is not None:
        stdout.write(f"Re-encrypted the keys of {rotated} exchange connection(s).")
    return rotated
