from __future__ import annotations

from decimal import Decimal

import factory

from alerts.choices import AlertKind
from alerts.models import Alert, AlertFiring
from tests.factories.base import TenantFactory, owner
from tests.factories.core import NotificationFactory
from tests.factories.marketdata import InstrumentFactory


class AlertFactory(TenantFactory):
    """An armed "BTC/USDT rises above 25,000" alert, stored as is: the evaluators learn of alerts made
    through alerts.services (the change stream); use `alert_create` where an evaluator must see it."""

    class Meta:
        model = Alert

    kind = AlertKind.PRICE_ABOVE
    instrument = factory.SubFactory(InstrumentFactory)
    threshold = Decimal("25000")


class AlertFiringFactory(TenantFactory):
    class Meta:
        model = AlertFiring

    alert = factory.SubFactory(AlertFactory, user=owner())
    occurrence_key = factory.Sequence(lambda n: f"tick:{n}")
    value = Decimal("25001")
    previous_value = Decimal("24999")
    message = "BTC/USDT rose above 25,000.00 (now 25,001.00)."
    notification = factory.SubFactory(NotificationFactory, user=owner(), message=factory.SelfAttribute("..message"))
