"""What forms share across apps: showing a service's DomainError where the user will look for it."""

from __future__ import annotations

from collections.abc import Mapping

from django import forms

from core.errors import DomainError


def form_add_domain_error(
    *, form: forms.Form, error: DomainError, field_names: Mapping[str, str] | None = None
) -> None:
    """Put `error` under the form field it names, or above the form when the form has no such field.

    `field_names` maps a service's argument to the form field that collects it where the two differ
    (alerts take `cooldown` as a timedelta from a `cooldown_minutes` field)."""
    field = (field_names or {}).get(error.field or "", error.field)
    form.add_error(field if field in form.fields else None, str(error))
