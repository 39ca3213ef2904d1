"""A row owned by each given user in every tenant and identity table, built from the models themselves.

The probe test needs rows of two users everywhere, including in tables added later; a generic builder
fills each model's fields (parents first, each owned by the same user) so that a new tenant model is
seeded without anyone remembering to. Written on the system connection, as the admin would.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta
from decimal import Decimal

from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.utils import timezone

from core.rls import system_context
from core.tables import TABLES, TableClass

_counter = itertools.count(1)

# Fields whose generic value would break a model's check constraints: the "none of it" shape instead
# (a research note without a thesis, chart or publication).
_NONE_OF_IT = {
    "direction": "", "entry": None, "target": None, "stop": None, "horizon": None, "thesis_instrument": None,
    "chart_interval": "", "chart_start": None, "chart_end": None, "chart_instrument": None, "chart_alt": "",
    "audience": "", "published_at": None, "first_published_at": None,
}
SHAPES: dict[str, dict] = {"research_note": _NONE_OF_IT}


def model_for_table(table: str) -> type[models.Model] | None:
    for model in apps.get_models(include_auto_created=True):
        if model._meta.db_table == table:
            return model
    return None


def _value(field: models.Field):
    n = next(_counter)
    unique = f"{n}-{uuid.uuid4().hex[:12]}"
    if field.choices:
        return field.choices[0][0]
    if isinstance(field, models.UUIDField):
        return uuid.uuid4()
    if isinstance(field, models.EmailField):
        return f"seed{unique}@example.com"
    if isinstance(field, (models.CharField, models.TextField)):
        return f"s{unique}"[: field.max_length or 40]
    if isinstance(field, models.DecimalField):
        return Decimal("1")
    if isinstance(field, models.DurationField):
        return timedelta(minutes=1)
    if isinstance(field, models.DateTimeField):
        return timezone.now()
    if isinstance(field, models.DateField):
        return timezone.now().date()
    if isinstance(field, models.BooleanField):
        return False
    if isinstance(field, (models.IntegerField, models.FloatField)):
        return n
    if isinstance(field, models.JSONField):
        return {}
    if isinstance(field, models.GenericIPAddressField):
        return "127.0.0.1"
    if isinstance(field, models.BinaryField):
        return b"seed"
    if isinstance(field, ArrayField):
        return [_value(field.base_field)]
    if isinstance(field, SearchVectorField):
        return None
    raise TypeError(f"the seeder has no value for {field!r}: add one to tests/rls/seeding.py")


def _build(model: type[models.Model], user, made: dict) -> models.Model:
    user_model = get_user_model()
    if model is user_model:
        return user
    key = (model, user.pk)
    if key in made:
        return made[key]
    if TABLES.get(model._meta.db_table) and TABLES[model._meta.db_table].kind is TableClass.REFERENCE:
        existing = model.objects.first()  # content types, permissions: Django's own rows
        if existing is not None:
            return existing
    values = {}
    shape = SHAPES.get(model._meta.db_table, {})
    for field in model._meta.concrete_fields:
        if field.name in shape:
            values[field.name] = shape[field.name]
            continue
        if field.primary_key and (field.auto_created or isinstance(field, models.AutoField)):
            continue
        if field.is_relation:
            values[field.name] = _build(field.related_model, user, made)
        elif field.has_default() and field.get_default() is not None:
            values[field.name] = field.get_default()
        else:
            values[field.name] = _value(field)
    instance = model(**values)
    instance.save(force_insert=True)
    made[key] = instance
    return instance


def seed_every_table(*, users) -> dict[str, type[models.Model]]:
    """A row for each user in each tenant and identity table with an owner; returns table -> model."""
    seeded = {}
    made: dict = {}
    with system_context(reason="tests: seed every table for the probe"):
        for name, table in TABLES.items():
            if table.kind not in (TableClass.TENANT, TableClass.IDENTITY) or not table.owner_column:
                continue
            model = model_for_table(name)
            if model is None:
                continue
            for user in users:
                _build(model, user, made)
            seeded[name] = model
    return seeded
