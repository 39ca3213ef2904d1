import gc
import os

from celery import Celery, Task
from celery.signals import worker_process_init
from django.db import InterfaceError, OperationalError

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.local")


class NexusTask(Task):
    """Every task's base: a database outage (PostgreSQL or PgBouncer down, restarting, failing over; the
    connection refused or dropped) is retried with exponential backoff and jitter, up to about half an hour,
    instead of failing the task. Tasks are idempotent (docs/architecture.md), so a retry is safe. A task
    that sets its own `autoretry_for` or `max_retries` keeps them."""

    autoretry_for = (OperationalError, InterfaceError)
    retry_backoff = 2
    retry_backoff_max = 300
    retry_jitter = True
    max_retries = 12


app = Celery("nexus", task_cls=NexusTask)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def worker_process_ready(**kwargs) -> None:
    keep_worker_connections()
    # Everything loaded so far (Django, the apps, their modules) lives as long as the process: moved out of
    # the collector's reach, a full collection no longer walks it. Fan-out chunks allocate many objects and
    # spent a sixth of their time in those collections.
    gc.freeze()


def keep_worker_connections() -> None:
    """A worker process runs one task after another in one thread, so unlike daphne it does reuse a kept
    connection: a fan-out chunk then skips a new server process and keeps its prepared statements.
    WORKER_DB_CONN_MAX_AGE seconds (default 300; 0 closes after each task). Django still closes it after a
    task when it is older than that or broken (Celery's Django fix-up calls close_if_unusable_or_obsolete)."""
    from django.conf import settings
    from django.db import connections

    if getattr(settings, "DB_POOL_SIZE", 0):
        return  # a pool (DB_POOL_SIZE) keeps them already, and refuses CONN_MAX_AGE
    age = int(os.environ.get("WORKER_DB_CONN_MAX_AGE", "300"))
    for alias in ("default", "system"):
        settings.DATABASES[alias]["CONN_MAX_AGE"] = age
        connections[alias].settings_dict["CONN_MAX_AGE"] = age
