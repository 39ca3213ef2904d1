"""A subscription change clears the plan the API's rate limit keeps in the cache (billing.selectors)."""

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from billing.models import Subscription
from billing.selectors import rate_plan_cache_key


@receiver([post_save, post_delete], sender=Subscription, dispatch_uid="billing.rate_plan_forget")
def _subscription_changed(sender, instance, **kwargs):
    key = rate_plan_cache_key(instance.user_id)
    cache.delete(key)
    transaction.on_commit(lambda: cache.delete(key))
