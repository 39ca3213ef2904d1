from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

import factory
from allauth.account.models import EmailAddress
from knox.models import get_digest_token
from knox.settings import CONSTANTS as KNOX

from accounts.models import ApiToken, DiscordLinkCode, User
from accounts.services import DISCORD_LINK_CODE_LIFETIME, api_token_create, discord_code_digest
from core.rls import auth_context, system_context, tenant
from tests.factories.base import TenantFactory

DEFAULT_PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    """A signed-up user with a verified primary email. Users are identity rows: the runtime role cannot
    create them, so the factory writes them on the system connection, as the admin would."""

    class Meta:
        model = User
        django_get_or_create = ("email",)

    email = factory.Sequence(lambda n: f"trader{n}@example.com")
    display_name = factory.Faker("name")
    password = DEFAULT_PASSWORD
    verified = True

    @classmethod
    def _create(cls, model_class, *args, password=None, verified=True, **kwargs):
        with system_context(reason="tests: a user signs up"):
            user = super()._create(model_class, *args, **kwargs)
            user.set_password(password or DEFAULT_PASSWORD)
            user.save(update_fields=["password"])
            EmailAddress.objects.get_or_create(
                user=user, email=user.email, defaults={"verified": verified is not False, "primary": True}
            )
        return user

    @classmethod
    def _build(cls, model_class, *args, password=None, verified=True, **kwargs):
        user = super()._build(model_class, *args, **kwargs)
        user.set_password(password or DEFAULT_PASSWORD)
        return user


class ApiTokenFactory(TenantFactory):
    """A token row whose secret nobody keeps (listing, expiry, revocation). For a token a client sends,
    use `api_token_for`, which goes through the service and returns the secret."""

    class Meta:
        model = ApiToken

    class Params:
        digest_and_secret = factory.LazyFunction(get_digest_token)

    name = factory.Sequence(lambda n: f"script {n}")
    digest = factory.LazyAttribute(lambda o: o.digest_and_secret[0])
    token_key = factory.LazyAttribute(lambda o: o.digest_and_secret[1][: KNOX.TOKEN_KEY_LENGTH])
    expiry = factory.LazyFunction(lambda: datetime.now(UTC) + timedelta(days=30))

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        # Not knox's manager.create() (as accounts.services does not): it makes its own digest and takes
        # the expiry as a duration.
        with tenant(kwargs["user"].pk):
            token = model_class(*args, **kwargs)
            token.save(force_insert=True)
        return token


def api_token_for(user: User, *, name: str = "test client", expires_on: date | None = None,
                  scopes: Iterable[str] | None = None) -> str:
    """A new working API token of `user`: the text a client sends as `Authorization: Token <it>`.
    `scopes`: "read" and/or "trade" (default: both)."""
    expires_on = expires_on or datetime.now(UTC).date() + timedelta(days=30)
    _, secret = api_token_create(user=user, name=name, expires_on=expires_on, scopes=scopes)
    return secret


class DiscordLinkCodeFactory(factory.django.DjangoModelFactory):
    """A live one-time Discord link code of `user`; only the digest of `code` is stored. Written in the auth
    context, where accounts.services.discord_link_code_issue writes it (the runtime role cannot reach it).
    For a code a member sends to the bot, use `discord_link_code_issue`, which returns it."""

    class Meta:
        model = DiscordLinkCode

    class Params:
        code = factory.Sequence(lambda n: f"TESTCODE{n:02d}")

    user = factory.SubFactory(UserFactory)
    digest = factory.LazyAttribute(lambda o: discord_code_digest(o.code))
    expires_at = factory.LazyFunction(lambda: datetime.now(UTC) + DISCORD_LINK_CODE_LIFETIME)

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        with auth_context(reason="tests: a Discord link code is issued"):
            return super()._create(model_class, *args, **kwargs)
