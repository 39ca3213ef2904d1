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
        _pool_reconnects_every_second()


def _pool_reconnects_every_second() -> None:
    """A web process's connection pool (psycopg_pool, DB_POOL_SIZE) tries again every second, not with
    doubling waits, after PostgreSQL went away.

    The pool grows by one connection attempt at a time; a failed one is retried after 1, 2, 4, 8, 16 ...
    seconds, and every request meanwhile waits the pool's 10 s for a connection and answers 503. After a
    10-second restart the next attempt came 15-30 s later, so requests kept failing for that long once the
    database was back (the postgres_restart drill: 503s 7 s after the restart). An attempt a second costs a
    down server one refused connection per pool and second."""
    from psycopg_pool.base import AttemptWithBackoff

    AttemptWithBackoff.DELAY_BACKOFF = 1.0


class NexusAdminConfig(admin_apps.AdminConfig):
    default = False
    default_site = "core.admin_site.NexusAdminSite"
