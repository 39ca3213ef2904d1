"""core.unit_of_work.UnitOfWork: rows of many owners written each as its owner, effects once after commit."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, transaction

from core.audit import audit_entry
from core.models import AuditLog, Notification
from core.notifications import notification_build
from core.rls import tenant
from core.unit_of_work import UnitOfWork


def test_each_owners_rows_are_written_as_that_owner_and_effects_run_once_after_commit(
    user_a, user_b, django_capture_on_commit_callbacks
):
    sent = []
    with django_capture_on_commit_callbacks(execute=True), transaction.atomic():
        uow = UnitOfWork()
        for user in (user_a, user_b):
            uow.notify(*notification_build(user=user, kind="test.kind", message=f"for {user.pk}", choices={}))
            uow.audit(audit_entry(action="test.done", user=None, user_id=user.pk))
            uow.emit("done", sent.append, user.pk)
        uow.flush()
        assert sent == [], "nothing runs before the commit"
    assert sent == [[user_a.pk, user_b.pk]], "one call with everything emitted under the name"
    for user in (user_a, user_b):
        with tenant(user.pk):
            assert list(Notification.objects.values_list("message", flat=True)) == [f"for {user.pk}"]
            assert list(AuditLog.objects.values_list("action", flat=True)) == ["test.done"]


def test_a_row_handed_over_for_another_owner_is_refused_and_nothing_runs(
    user_a, user_b, django_capture_on_commit_callbacks
):
    sent = []
    with (
        django_capture_on_commit_callbacks(execute=True),
        pytest.raises(DatabaseError, match="row-level security"),
        transaction.atomic(),
    ):
        uow = UnitOfWork()
        uow.insert(Notification(user=user_b, kind="test.kind", message="forged"), user_id=user_a.pk)
        uow.emit("done", sent.append, 1)
        uow.flush()
    assert sent == []
    with tenant(user_b.pk):
        assert not Notification.objects.exists()
