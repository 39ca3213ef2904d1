from __future__ import annotations

import secrets
from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac
from knox.models import AbstractAuthToken
from knox.settings import CONSTANTS as KNOX

from accounts.choices import TIME_ZONE_CHOICES, ApiScope, BaseCurrency, api_scopes_all


def new_session_salt() -> str:
    return secrets.token_hex(16)


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_queryset(self):
        # The runtime database role may not read password hashes (docs/security.md); the hash is loaded
        # on access, which only the auth context's connection (sign-in, password change) can do.
        return super().get_queryset().defer("password")

    def _create(self, email: str, password: str | None, **fields) -> User:
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **fields) -> User:
        fields.setdefault("is_staff", False)
        fields.setdefault("is_superuser", False)
        return self._create(email, password, **fields)

    def create_superuser(self, email: str, password: str | None = None, **fields) -> User:
        fields.update(is_staff=True, is_superuser=True)
        return self._create(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A Nexus account. The email address is the login."""

    email = models.EmailField("email address", unique=True)
    display_name = models.CharField(max_length=80, blank=True)
    time_zone = models.CharField(max_length=64, choices=TIME_ZONE_CHOICES, default="UTC")
    base_currency = models.CharField(max_length=8, choices=BaseCurrency.choices, default=BaseCurrency.USD)
    is_staff = models.BooleanField(default=False, help_text="May open the admin (with two-factor authentication).")
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    # Both sign this user's sessions (see _session_auth_hash): a password change renews the salt, "log out
    # everywhere" raises the generation, and either ends every other session.
    session_salt = models.CharField(max_length=32, default=new_session_salt, editable=False)
    session_generation = models.PositiveIntegerField(
        default=0, help_text="Part of every session's auth hash: raising it logs the user out everywhere."
    )

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]
        # Related lookups (order.user) go through the manager that leaves the password hash unread.
        base_manager_name = "objects"

    def __str__(self) -> str:
        return self.display_name or self.email

    def save(self, *args, **kwargs) -> None:
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "password" in update_fields:
            kwargs["update_fields"] = {*update_fields, "session_salt"}
        super().save(*args, **kwargs)

    def set_password(self, raw_password: str | None) -> None:
        super().set_password(raw_password)
        self.session_salt = new_session_salt()

    @property
    def label(self) -> str:
        return self.display_name or self.email.split("@", 1)[0]

    # Django keeps this hash in the session at login and compares it on every request; a mismatch ends the
    # session. Django's own is a hash of the password, which the runtime database role may not read; ours
    # signs the salt a password change renews and the generation "log out everywhere" raises, so either
    # ends every session without finding them in the session store.
    def get_session_auth_hash(self) -> str:
        return self._session_auth_hash(secret=None)

    def get_session_auth_fallback_hash(self) -> Iterator[str]:
        for fallback_secret in settings.SECRET_KEY_FALLBACKS:
            yield self._session_auth_hash(secret=fallback_secret)

    def _session_auth_hash(self, *, secret: str | None) -> str:
        return salted_hmac(
            "accounts.User.session_auth_hash",
            f"{self.session_salt}:{self.session_generation}",
            secret=secret,
            algorithm="sha256",
        ).hexdigest()


class ApiToken(AbstractAuthToken):
    """A personal API token (django-rest-knox). Only the SHA-512 digest of the token is stored, with its
    first characters (`token_key`) to find the row; the token itself is shown once, when it is created."""

    # A plain id for URLs and the audit log; knox's primary key would be the digest.
    id = models.BigAutoField(primary_key=True)
    digest = models.CharField(max_length=KNOX.DIGEST_LENGTH, unique=True)
    name = models.CharField(max_length=80)
    expiry = models.DateTimeField(help_text="The token stops working at this moment (UTC).")
    last_used_at = models.DateTimeField(null=True, blank=True)
    # What the token may do (core.api.TokenScopePermission). Tokens made before scopes existed got both.
    scopes = ArrayField(models.CharField(max_length=16, choices=ApiScope.choices), default=api_scopes_all)

    class Meta:
        ordering = ["-created", "-id"]
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.token_key}…)"

    @property
    def is_expired(self) -> bool:
        return self.expiry <= timezone.now()


class DiscordLinkCode(models.Model):
    """A one-time code that links a Discord account to a Nexus account: shown once on /settings/, sent to the
    bot as `/link CODE`. Only its SHA-256 digest is stored; it works once and for a few minutes
    (accounts.services.discord_link_redeem). Read and written only in the auth context: the bot redeems a
    code before it knows whose it is."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="discord_link_codes")
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "Discord link code"

    def __str__(self) -> str:
        return f"Discord link code of user {self.user_id}"
