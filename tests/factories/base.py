"""Where factory rows are written, by table class (core/tables.py), as the product would write them.

- Tenant rows are written as their owner: inside `tenant(user.pk)`, so the row-level security policy
  checks them exactly as it checks a request's writes. A factory's `user` is its owner; parent rows
  built by a sub-factory belong to the same user.
- Shared reference rows (instruments, quotes, ticks, candles, signals, regime readings, Stripe prices)
  are written inside `system_context(...)`, like the feed, the signal engine and `billing_sync_plans`.
- System-only rows (Stripe webhook payloads) are written inside `system_context(...)` as well: the
  runtime role cannot reach them at all.

Every database test commits (tests/conftest.py), so a row a factory wrote is visible to every
connection, the system and auth contexts included.
"""

from __future__ import annotations

import factory

from core.rls import system_context, tenant


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    user = factory.SubFactory("tests.factories.accounts.UserFactory")

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with tenant(kwargs["user"].pk):
            return super()._create(model_class, *args, **kwargs)


class ReferenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with system_context(reason="tests: the market feed's, signal engine's and plan sync's shared data"):
            return super()._create(model_class, *args, **kwargs)


class SystemOnlyFactory(factory.django.DjangoModelFactory):
    class Meta:
        abstract = True

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with system_context(reason="tests: system-only bookkeeping"):
            return super()._create(model_class, *args, **kwargs)


def owner(path: str = "..user"):
    """A sub-factory's `user`: the owner of the row being built, so a tenant's rows never mix users."""
    return factory.SelfAttribute(path)
