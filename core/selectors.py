from django.db.models import QuerySet

from core.models import AuditLog


def audit_list_for_user(*, user) -> QuerySet[AuditLog]:
    return AuditLog.objects.filter(user=user).order_by("-created_at")
