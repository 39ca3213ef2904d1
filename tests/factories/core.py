from __future__ import annotations

import factory

from core.models import (
    AuditLog,
    DeliveryStatus,
    IdempotencyRecord,
    Notification,
    NotificationDelivery,
    NotificationPreference,
)
from tests.factories.base import TenantFactory, owner


class AuditLogFactory(TenantFactory):
    """An audit row about `user`'s data. The product writes these through core.audit.audit_record."""

    class Meta:
        model = AuditLog

    actor = factory.SelfAttribute("user")
    actor_label = factory.LazyAttribute(lambda o: o.user.email)
    action = "portfolio.created"


class NotificationFactory(TenantFactory):
    """A row of the notification centre, without deliveries (core.notifications.notify makes both)."""

    class Meta:
        model = Notification

    kind = "alert.price"
    message = factory.Sequence(lambda n: f"BTC/USDT rose above {100 + n}.00.")


class NotificationDeliveryFactory(TenantFactory):
    class Meta:
        model = NotificationDelivery

    notification = factory.SubFactory(NotificationFactory, user=owner())
    channel = "email"
    status = DeliveryStatus.PENDING


class NotificationPreferenceFactory(TenantFactory):
    class Meta:
        model = NotificationPreference

    kind = "alert.price"
    channel = "email"
    enabled = False


class IdempotencyRecordFactory(TenantFactory):
    """A finished API request sent with an Idempotency-Key (core.idempotency writes these)."""

    class Meta:
        model = IdempotencyRecord

    key = factory.Sequence(lambda n: f"key-{n}")
    method = "POST"
    path = "/api/v1/portfolios/"
    request_hash = "0" * 64
    status_code = 201
    content_type = "application/json"
    response_body = b'{"id": 1}'
