"""core.batch.TenantPipeline: many users' statements in one round trip, each still under its owner's RLS."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from core.batch import TenantPipeline
from core.models import Notification
from core.rls import current_tenant_id, tenant


def _note(user, message):
    with tenant(user.pk):
        return Notification.objects.create(user=user, kind="test.kind", message=message)


def test_each_statement_runs_as_the_user_it_was_queued_for(user_a, user_b):
    _note(user_a, "for alice")
    _note(user_b, "for bob")
    with transaction.atomic():
        pipe = TenantPipeline()
        alice = pipe.select(Notification, "kind = %s", ["test.kind"], user_id=user_a.pk)
        bob = pipe.select(Notification, "kind = %s", ["test.kind"], user_id=user_b.pk)
        nobody = pipe.select(Notification, "kind = %s", ["test.kind"], user_id=None)
        pipe.close()
        assert [n.message for n in alice.instances()] == ["for alice"]
        assert [n.message for n in bob.instances()] == ["for bob"]
        assert nobody.instances() == []
        assert current_tenant_id() is None, "after close() the transaction acts as nobody"
    assert pipe.round_trips == 1


def test_a_row_written_for_another_user_is_refused_by_the_database(user_a, user_b):
    with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
        pipe = TenantPipeline()
        pipe.insert(Notification(user=user_b, kind="test.kind", message="forged"), user_id=user_a.pk)
        pipe.sync()
    with tenant(user_b.pk):
        assert not Notification.objects.exists()


def test_an_update_cannot_reach_another_users_row(user_a, user_b):
    note = _note(user_b, "bob's")
    note.message = "changed by alice"
    with transaction.atomic():
        pipe = TenantPipeline()
        pipe.update(note, ["message"], user_id=user_a.pk)
        pipe.close()
    with tenant(user_b.pk):
        assert Notification.objects.get().message == "bob's"


def test_reserved_ids_are_used_and_rows_round_trip_through_the_models_fields(user_a):
    with transaction.atomic():
        pipe = TenantPipeline()
        [pk] = pipe.reserve_ids(Notification, 1)
        pipe.insert(Notification(pk=pk, user=user_a, kind="test.kind", message="é ✓", link="/x/"), user_id=user_a.pk)
        found = pipe.select(Notification, "id = %s", [pk], user_id=user_a.pk)
        pipe.close()
        stored = found.instance()
    assert (stored.pk, stored.message, stored.link, stored.read_at) == (pk, "é ✓", "/x/", None)
    assert stored.created_at is not None, "auto_now_add is applied as by save()"


def test_a_nested_tenant_block_for_the_same_user_costs_no_round_trip_to_set_it(user_a, user_b):
    with tenant(user_a.pk):
        with CaptureQueriesContext(connection) as queries, tenant(user_a.pk):
            pass
        assert not any("set_config" in q["sql"] or "current_setting" in q["sql"] for q in queries.captured_queries)
        with tenant(user_b.pk):
            assert current_tenant_id() == user_b.pk
            with tenant(user_a.pk):
                assert current_tenant_id() == user_a.pk
            assert current_tenant_id() == user_b.pk
        assert current_tenant_id() == user_a.pk


def test_pipeline_statements_are_prepared_and_the_orms_are_not(user_a):
    """Django switches psycopg's prepared statements off; the pipeline's repeat for every user of a batch
    and are worth preparing (PostgreSQL otherwise plans a six-table join for each of them)."""
    with transaction.atomic():
        for _ in range(2):
            pipe = TenantPipeline()
            pipe.select(Notification, "kind = %s", ["test.kind"], user_id=user_a.pk)
            pipe.close()
        list(Notification.objects.filter(kind="orm.kind"))
        list(Notification.objects.filter(kind="orm.kind"))
        with connection.cursor() as cursor:
            cursor.execute("SELECT statement FROM pg_prepared_statements")
            prepared = [row[0] for row in cursor.fetchall()]
    assert any('FROM "core_notification" WHERE kind = $1' in sql for sql in prepared)
    assert not any("orm.kind" in sql or '"core_notification"."kind" =' in sql for sql in prepared)


def test_a_pipeline_refuses_to_run_inside_a_tenant_block(user_a):
    with tenant(user_a.pk), pytest.raises(RuntimeError, match="outside tenant"):
        TenantPipeline()


def test_a_pipeline_within_a_tenant_block_acts_as_its_user_only(user_a, user_b):
    from core.rls import current_tenant_id

    with tenant(user_a.pk):
        pipe = TenantPipeline(within_tenant=True)
        with pytest.raises(ValueError, match="acts as that user only"):
            pipe.execute("SELECT 1", user_id=user_b.pk)
        seen = pipe.execute("SELECT current_setting('app.user_id', true)", user_id=user_a.pk)
        pipe.close()
        assert seen.scalar() == str(user_a.pk)
        assert current_tenant_id() == user_a.pk  # still acting as the block's user


def test_a_claim_gives_way_to_an_existing_row_without_aborting(user_a):
    from core.models import NotificationPreference

    with tenant(user_a.pk):
        pipe = TenantPipeline(within_tenant=True)
        first = pipe.claim(
            NotificationPreference(user=user_a, kind="k", channel="email", enabled=True), user_id=user_a.pk,
            unique_fields=["user", "kind", "channel"],
        )
        pipe.sync()
        assert first.scalar() is not None
        again = pipe.claim(
            NotificationPreference(user=user_a, kind="k", channel="email", enabled=True), user_id=user_a.pk,
            unique_fields=["user", "kind", "channel"],
        )
        pipe.close()
        assert again.scalar() is None
        assert NotificationPreference.objects.filter(kind="k").count() == 1
