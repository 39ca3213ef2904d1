"""Rows committed by a transactional test do not leak into the next one."""

import pytest

from core.models import AuditLog
from core.rls import system_context
from tests.factories import UserFactory


@pytest.mark.django_db(transaction=True)
def test_first_commits_a_user_and_an_audit_row():
    from core.audit import audit_record

    user = UserFactory(email="leak@example.com")
    audit_record(action="test.leak", user=user, actor=user)


@pytest.mark.django_db(transaction=True)
def test_second_sees_none_of_them():
    from accounts.models import User

    assert not User.objects.filter(email="leak@example.com").exists()
    with system_context(reason="test: look for leaked rows"):
        assert not AuditLog.objects.filter(action="test.leak").exists()
