"""Handing work to Celery by task name, so a service never imports the tasks module that imports it.

Tasks call services; services that must start a task after their transaction commits (submit an order,
fan a signal out, backfill a portfolio) name it instead: no import cycle between an app's `services` and
its `tasks`.
"""

from __future__ import annotations

import threading

from celery import current_app

# Daphne runs requests in threads: the first requests of a process may all find a task not loaded yet.
# One of them loads it while the others wait (without the lock, one could look the task up while another
# is half-way through importing its module, and get NotRegistered).
_loading = threading.Lock()


def task_enqueue(name: str, *, args: list | tuple = (), kwargs: dict | None = None, countdown: int | None = None) -> None:
    """Send the task registered as `name` (e.g. "trading.order_submit") as its own `apply_async` would, so the
    task's options and settings such as `task_always_eager` apply.

    A process that has not loaded the task yet (a web process loads task modules only when it needs one)
    loads the `<app>.tasks` module of task "<app>.<name>" the way Celery's autodiscovery finds it."""
    app = current_app
    if name not in app.tasks:
        with _loading:
            if name not in app.tasks:
                app.loader.autodiscover_tasks([name.partition(".")[0]])
    app.tasks[name].apply_async(args=args, kwargs=kwargs, countdown=countdown)
