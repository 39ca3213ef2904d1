"""Every model has a factory, and each factory writes a valid row where the product writes it: tenant
rows as their owner (under row-level security), shared and system-only rows on the system connection."""

from __future__ import annotations

import factory
import pytest
from django.apps import apps

from core.rls import system_context, tenant
from core.tables import TABLES, TableClass
from tests import factories

OUR_APPS = {
    "accounts", "core", "marketdata", "portfolios", "trading", "alerts", "automation", "billing", "bot", "research",
    "newsletter",
}
FACTORIES = [
    value
    for value in vars(factories).values()
    if isinstance(value, type) and issubclass(value, factory.django.DjangoModelFactory)
]


def test_every_model_of_ours_has_a_factory():
    # A proxy (billing.webhooks.StoredDelivery over dj-stripe's trigger) has no table or rows of its own.
    models = {
        model for model in apps.get_models() if model._meta.app_label in OUR_APPS and not model._meta.proxy
    }
    assert models - {f._meta.model for f in FACTORIES} == set()


@pytest.mark.parametrize("model_factory", FACTORIES, ids=lambda f: f.__name__)
def test_a_factory_row_is_stored_and_its_owner_sees_it(db, model_factory):
    row = model_factory()
    model = type(row)
    table = TABLES[model._meta.db_table]
    if table.kind is TableClass.TENANT:
        with tenant(row.user_id):
            assert model.objects.filter(pk=row.pk).exists()
        others = factories.UserFactory()
        with tenant(others.pk):
            assert not model.objects.filter(pk=row.pk).exists()
    else:
        with system_context(reason="tests: the factory's row is stored"):
            assert model.objects.filter(pk=row.pk).exists()
