"""Every registered task is routed to one of the declared queues, and every queue has a worker in the
Procfile (make run) and in compose.yaml."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from config.celery import app
from tests.scale.helpers import ROOT

pytestmark = pytest.mark.django_db


@pytest.fixture
def registered() -> list[str]:
    app.loader.import_default_modules()  # every app's tasks module, as a worker loads them
    return sorted(name for name in app.tasks if not name.startswith("celery."))


def _queue(name: str) -> str:
    route = app.amqp.router.route({}, name)
    return route["queue"].name


def test_every_task_lands_on_a_declared_queue(registered):
    declared = set(settings.CELERY_QUEUE_NAMES)
    assert {q.name for q in settings.CELERY_TASK_QUEUES} == declared
    assert len(registered) > 15
    for name in registered:
        assert _queue(name) in declared, name


def test_the_split(registered):
    assert _queue("trading.plans_execute") == "fanout"
    assert _queue("trading.signal_fan_out") == "fanout"
    assert _queue("billing.process_webhook_event") == "billing"
    assert _queue("core.notifications.deliver") == "notifications"
    assert _queue("trading.order_submit") == "default"
    assert _queue("portfolios.snapshot_all") == "default"
    # Every queue a route names exists, and each has tasks.
    used = {_queue(name) for name in registered}
    assert used == set(settings.CELERY_QUEUE_NAMES)


def _queues_of(command: str) -> set[str]:
    match = re.search(r"(?:-Q|--queues)[ =]\[?\"?([\w,\", ]+)", command)
    if match is None:  # no -Q: a worker consumes every declared queue
        return set(settings.CELERY_QUEUE_NAMES)
    return {q.strip(' "') for q in match.group(1).split(",") if q.strip(' "')}


def test_every_queue_has_workers_in_the_procfile_and_compose():
    procfile = (ROOT / "Procfile").read_text().splitlines()
    workers = {line.split(":", 1)[0]: line.split(":", 1)[1] for line in procfile if " worker" in line}
    assert "worker" in workers and _queues_of(workers["worker"]) == set(settings.CELERY_QUEUE_NAMES)
    per_queue = set().union(*(_queues_of(cmd) for name, cmd in workers.items() if name != "worker"))
    assert per_queue == set(settings.CELERY_QUEUE_NAMES)
    compose = (ROOT / "compose.yaml").read_text()
    consumed = set()
    for line in compose.splitlines():
        if '"worker"' in line and "entrypoint" in line:
            consumed |= _queues_of(line)
    assert consumed == set(settings.CELERY_QUEUE_NAMES)
