from __future__ import annotations

import secrets

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.utils import timezone
from django.utils.crypto import salted_hmac

from accounts.choices import TIME_ZONE_CHOICES, BaseCurrency


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
    # Signs this user's sessions (see _get_session_auth_hash); a new one ends every other session.
    session_salt = models.CharField(max_length=32, default=new_session_salt, editable=False)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        ordering = ["email"]

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

    def _get_session_auth_hash(self, secret: str | None = None) -> str:
        """Django signs a session with a hash of the password; ours signs it with `session_salt`, which
        a password change renews, so sessions are checked without the runtime role reading the hash."""
        return salted_hmac("nexus.accounts.User.session", self.session_salt, secret=secret,
                           algorithm="sha256").hexdigest()

    @property
    def label(self) -> str:
        return self.display_name or self.email.split("@", 1)[0]
