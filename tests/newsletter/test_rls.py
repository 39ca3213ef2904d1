"""Row-level security on the newsletter's tables: deliveries are the author's, a recipient sees none of
them; a preference is its member's own; suppressions are out of the runtime role's reach entirely."""

from __future__ import annotations

import pytest
from django.db import ProgrammingError, transaction

from core.rls import tenant
from newsletter.models import ArchivedIssue, Delivery, Issue, Preference, Suppression
from tests.factories import ArchivedIssueFactory, DeliveryFactory, PreferenceFactory, SuppressionFactory


def test_deliveries_belong_to_the_author_not_the_recipient(db):
    delivery = DeliveryFactory()
    with tenant(delivery.user_id):
        assert Delivery.objects.filter(pk=delivery.pk).exists()
        assert Issue.objects.filter(pk=delivery.issue_id).exists()
    with tenant(delivery.recipient_id):
        assert not Delivery.objects.filter(pk=delivery.pk).exists()
        assert not Issue.objects.filter(pk=delivery.issue_id).exists()


def test_a_preference_is_its_members_own(user_a, user_b):
    PreferenceFactory(user=user_a)
    with tenant(user_b.pk):
        assert not Preference.objects.exists()


def test_suppressions_are_system_only_and_the_archive_is_readable_by_anyone(user_a):
    SuppressionFactory()
    ArchivedIssueFactory()
    with tenant(user_a.pk):
        assert ArchivedIssue.objects.count() == 1
        with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
            Suppression.objects.count()
        with pytest.raises(ProgrammingError, match="permission denied"), transaction.atomic():
            ArchivedIssue.objects.update(title="Defaced")
