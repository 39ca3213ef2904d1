"""The audit trail: every action that changes money, keys, plans or access calls `audit_record`."""

from __future__ import annotations

import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.http import HttpRequest

from core.models import AuditLog
from core.rls import system_context, tenant


def _jsonable(value: Any) -> Any:
    return None if value is None else json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    action: str,
    user: Any | None,
    actor: Any | None = None,
    actor_label: str = "",
    target: models.Model | None = None,
    before: dict | None = None,
    after: dict | None = None,
    request: HttpRequest | None = None,
) -> AuditLog:
    """Write one audit row in `user`'s tenant (or the system context when no tenant is affected)."""
    entry = audit_entry(
        action=action, user=user, actor=actor, actor_label=actor_label, target=target, before=before, after=after,
        request=request,
    )
    if user is None:
        with system_context(reason=f"audit {action}"):
            entry.save()
    else:
        with tenant(user.pk):
            entry.save()
    return entry


def audit_entry(
    *,
    action: str,
    user: Any | None,
    actor: Any | None = None,
    actor_label: str = "",
    target: models.Model | None = None,
    before: dict | None = None,
    after: dict | None = None,
    request: HttpRequest | None = None,
    user_id: int | None = None,
) -> AuditLog:
    """The audit row `audit_record` writes, unsaved (batch writers save many at once, each as its owner)."""
    if actor is not None and not getattr(actor, "is_authenticated", True):
        actor = None
    entry = AuditLog(
        actor=actor,
        actor_label=actor_label or (actor.email if actor is not None else "system"),
        action=action,
        target_type=target._meta.label if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        before=_jsonable(before),
        after=_jsonable(after),
        ip_address=client_ip(request),
    )
    if user is not None:
        entry.user = user
    else:
        entry.user_id = user_id
    return entry
