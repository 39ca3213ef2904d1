"""The fan-out's pipeline behind PgBouncer (transaction mode, no prepared-statement support): it sends its
statements unprepared, so a server connection shared with other clients never holds a statement of its."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connections, transaction

from core.batch import TenantPipeline
from core.models import Notification
from core.rls import tenant
from tests.scale.pgbouncer_fixture import running_pgbouncer

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def through_pgbouncer():
    """This process's runtime connections go through a PgBouncer with a single server connection."""
    with running_pgbouncer(pool_size=1) as (port, _):
        saved = {}
        for alias in ("default", "system", "auth"):
            connections[alias].close()
            saved[alias] = dict(connections[alias].settings_dict)
            connections[alias].settings_dict.update({"HOST": "127.0.0.1", "PORT": str(port)})
            connections[alias].settings_dict["OPTIONS"] = {}
        try:
            yield port
        finally:
            for alias, settings_dict in saved.items():
                connections[alias].close()
                connections[alias].settings_dict.clear()
                connections[alias].settings_dict.update(settings_dict)


def _rounds(user, port: int) -> list[str]:
    """Pipelines and another client's prepared statement, transaction after transaction on one server
    connection; the messages read and the errors met."""
    settings_dict = connections["default"].settings_dict
    other = psycopg.connect(
        host="127.0.0.1", port=port, dbname=settings_dict["NAME"], user=settings_dict["USER"], autocommit=True
    )
    seen = []
    try:
        for _ in range(3):
            with transaction.atomic():
                pipe = TenantPipeline()
                pending = pipe.select(Notification, "kind = %s", ["test.kind"], user_id=user.pk)
                pipe.close()
                seen += [n.message for n in pending.instances()]
            try:
                other.execute("SELECT %s::int", [1], prepare=True)  # psycopg names it _pg3_0, like ours
                other.execute("DEALLOCATE ALL")
            except psycopg.errors.DuplicatePreparedStatement as error:
                seen.append(f"error: {error}")
    finally:
        other.close()
    return seen


def test_the_pipeline_sends_unprepared_statements_through_the_pooler(user_a, through_pgbouncer, settings):
    with tenant(user_a.pk):
        Notification.objects.create(user=user_a, kind="test.kind", message="hello")
    settings.DATABASE_PREPARED_STATEMENTS = False
    assert _rounds(user_a, through_pgbouncer) == ["hello"] * 3


def test_prepared_pipeline_statements_would_collide_on_a_shared_server_connection(user_a, through_pgbouncer, settings):
    """Why the setting exists: prepared, the pipeline's statement stays on the server connection the pooler
    then gives to another client, whose own first statement has the same name."""
    with tenant(user_a.pk):
        Notification.objects.create(user=user_a, kind="test.kind", message="hello")
    settings.DATABASE_PREPARED_STATEMENTS = True
    assert any(item.startswith("error: ") for item in _rounds(user_a, through_pgbouncer))
