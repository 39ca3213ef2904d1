from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import factory
from allauth.account.models import EmailAddress

from accounts.models import User
from accounts.services import api_token_create

DEFAULT_PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"trader{n}@example.com")
    display_name = factory.Faker("name")

    @factory.post_generation
    def password(self, create, extracted, **kwargs):
        self.set_password(extracted or DEFAULT_PASSWORD)
        if create:
            self.save(update_fields=["password"])

    @factory.post_generation
    def verified(self, create, extracted, **kwargs):
        if create:
            EmailAddress.objects.get_or_create(
                user=self, email=self.email, defaults={"verified": extracted is not False, "primary": True}
            )


def api_token_for(user: User, *, name: str = "test client", expires_on: date | None = None) -> str:
    """A new working API token of `user`: the text a client sends as `Authorization: Token <it>`."""
    expires_on = expires_on or datetime.now(UTC).date() + timedelta(days=30)
    _, secret = api_token_create(user=user, name=name, expires_on=expires_on)
    return secret
