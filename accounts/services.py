from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest

from accounts.models import User
from core.audit import audit_record

PROFILE_FIELDS = ("display_name", "time_zone", "base_currency")


@transaction.atomic
def user_update_profile(*, user: User, display_name: str, time_zone: str, base_currency: str,
                        request: HttpRequest | None = None) -> User:
    # Read from the database: a bound ModelForm has already written the new values onto `user`.
    before = User.objects.values(*PROFILE_FIELDS).get(pk=user.pk)
    user.display_name = display_name.strip()
    user.time_zone = time_zone
    user.base_currency = base_currency
    user.full_clean(exclude=["password"])
    user.save(update_fields=list(PROFILE_FIELDS))
    after = {field: getattr(user, field) for field in PROFILE_FIELDS}
    if before != after:
        audit_record(action="account.profile_updated", user=user, actor=user, target=user,
                     before=before, after=after, request=request)
    return user
