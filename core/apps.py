from django.apps import AppConfig, apps
from django.contrib.admin import apps as admin_apps
from django.db.models.signals import post_migrate


def _grants_after_migrate(sender, *, using: str, plan=None, **kwargs) -> None:
    """After `migrate` (not after a test flush, which sends no plan), grant per core/tables.py.

    post_migrate is sent once per app; the grants go once, after the last one."""
    last = [config for config in apps.get_app_configs() if config.models_module is not None][-1]
    if plan is None or sender is not last:
        return
    from django.db import connections

    from core.tables import grants_apply

    grants_apply(connections[using])


class CoreConfig(AppConfig):
    default = True
    name = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        post_migrate.connect(_grants_after_migrate, dispatch_uid="core.tables.grants")
        from core.metrics import CeleryQueueCollector, collectors_register

        collectors_register(CeleryQueueCollector())


class NexusAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "core.admin_site.NexusAdminSite"
