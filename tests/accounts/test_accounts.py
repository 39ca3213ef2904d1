"""Sign-up, verification, login, two-factor, password reset and settings, through the real views."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
import time_machine
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value
from django.core import mail
from django.urls import reverse

from accounts.models import User
from core.models import AuditLog
from core.rls import system_context, tenant
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def totp_code(secret: str) -> str:
    """The code an authenticator app shows now (on the test's clock)."""
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def start_of_a_totp_step() -> datetime:
    """The first second of the next 30-second TOTP step: a clock frozen there keeps every code valid."""
    return datetime.fromtimestamp((int(time.time()) // 30 + 1) * 30, tz=UTC)


def last_link(path_fragment: str) -> str:
    body = mail.outbox[-1].body
    return re.search(rf"https?://[^\s]+{path_fragment}[^\s]*", body).group(0).split("testserver", 1)[1]


def test_sign_up_sends_a_verification_mail_and_the_link_logs_in(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "New.Trader@Example.com", "password1": "a-strong-pass-2026", "password2": "a-strong-pass-2026"},
    )
    assert response.status_code == 302
    with system_context(reason="tests: read the new account back"):
        user = User.objects.get(email="new.trader@example.com")
    assert len(mail.outbox) == 1 and "new.trader@example.com" in mail.outbox[0].to

    dashboard = client.get(reverse("dashboard"))
    assert dashboard.status_code == 302, "an unverified account must not reach the dashboard"

    confirm_url = last_link("/accounts/confirm-email/")
    client.post(confirm_url)
    assert client.get(reverse("dashboard")).status_code == 200
    with tenant(user.pk):
        assert AuditLog.objects.filter(user=user, action="account.signed_up").exists()


def test_sign_up_with_mismatched_passwords_shows_field_errors_and_creates_nothing(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "x@example.com", "password1": "a-strong-pass-2026", "password2": "another-pass-2026"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["password2"]
    with system_context(reason="tests: no account was created"):
        assert not User.objects.filter(email="x@example.com").exists()


def test_sign_up_with_a_weak_password_is_refused(client):
    response = client.post(reverse("account_signup"), {"email": "y@example.com", "password1": "123", "password2": "123"})
    assert "password1" in response.context["form"].errors


def test_log_in_with_wrong_password_shows_an_error(client):
    UserFactory(email="t@example.com")
    response = client.post(reverse("account_login"), {"login": "t@example.com", "password": "wrong-password-1"})
    assert response.status_code == 200
    assert response.context["form"].non_field_errors()
    assert "_auth_user_id" not in client.session


def test_repeated_failed_logins_are_rate_limited(client):
    UserFactory(email="t@example.com")
    for _ in range(5):
        client.post(reverse("account_login"), {"login": "t@example.com", "password": "wrong-password-1"})
    response = client.post(reverse("account_login"), {"login": "t@example.com", "password": DEFAULT_PASSWORD})
    assert "_auth_user_id" not in client.session
    assert response.status_code == 429  # Too Many Requests, with the form and the reason on it
    assert "Too many failed login attempts" in response.content.decode()


def _log_in(client, email: str, password: str = DEFAULT_PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


@pytest.fixture
def totp_clock():
    """Time stands still at the start of a TOTP step, so no code expires between reading and typing it."""
    with time_machine.travel(start_of_a_totp_step(), tick=False) as clock:
        yield clock


def test_enable_two_factor_then_log_in_with_a_code(totp_clock, client, django_capture_on_commit_callbacks):
    user = UserFactory(email="mfa@example.com")
    _log_in(client, user.email)
    reauth = client.get(reverse("mfa_activate_totp"))
    assert reauth.url.startswith(reverse("account_reauthenticate")), "2FA changes need the password again"
    client.post(reauth.url, {"password": DEFAULT_PASSWORD})
    page = client.get(reverse("mfa_activate_totp"))
    secret = page.context["form"].secret
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("mfa_activate_totp"), {"code": totp_code(secret)})
    assert response.status_code == 302
    with tenant(user.pk):
        assert Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists()
    client.post(reverse("account_logout"))

    response = _log_in(client, user.email)
    assert response.status_code == 302 and response.url == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session, "the password alone must not log in"
    wrong = client.post(reverse("mfa_authenticate"), {"code": "000000"})
    assert wrong.context["form"].errors["code"]
    client.post(reverse("mfa_authenticate"), {"code": totp_code(secret)})
    assert client.session["_auth_user_id"] == str(user.pk)
    with tenant(user.pk):
        assert AuditLog.objects.filter(user=user, action="account.2fa_added").exists()


def test_password_reset_by_email(client):
    user = UserFactory(email="forgot@example.com")
    client.post(reverse("account_reset_password"), {"email": "forgot@example.com"})
    assert len(mail.outbox) == 1
    reset_url = last_link("/accounts/password/reset/key/")
    form_url = client.get(reset_url).url  # allauth moves the key into the session, then redirects
    mismatch = client.post(form_url, {"password1": "brand-new-pass-2026", "password2": "different-pass-2026"})
    assert mismatch.context["form"].errors
    client.post(form_url, {"password1": "brand-new-pass-2026", "password2": "brand-new-pass-2026"})
    with system_context(reason="tests: read the stored password hash"):
        user.refresh_from_db(fields=["password"])
    assert user.check_password("brand-new-pass-2026")


def test_settings_page_saves_and_audits(client):
    user = UserFactory(email="s@example.com")
    client.force_login(user)
    response = client.post(
        reverse("account_settings"), {"display_name": "Sam", "time_zone": "Europe/Paris", "base_currency": "EUR"}
    )
    assert response.status_code == 302
    with tenant(user.pk):
        user.refresh_from_db(fields=["display_name", "time_zone", "base_currency"])
    assert (user.display_name, user.time_zone, user.base_currency) == ("Sam", "Europe/Paris", "EUR")
    with tenant(user.pk):
        entry = AuditLog.objects.get(user=user, action="account.profile_updated")
    assert entry.before["base_currency"] == "USD" and entry.after["base_currency"] == "EUR"
    log = client.get(reverse("account_security_log"))
    assert b"account.profile_updated" in log.content


def test_settings_page_shows_field_errors_for_bad_input(client):
    user = UserFactory(email="s@example.com")
    client.force_login(user)
    response = client.post(
        reverse("account_settings"), {"display_name": "Sam", "time_zone": "Mars/Olympus", "base_currency": "XYZ"}
    )
    assert response.status_code == 200
    assert set(response.context["form"].errors) == {"time_zone", "base_currency"}
    with tenant(user.pk):
        user.refresh_from_db(fields=["time_zone"])
    assert user.time_zone == "UTC"


def test_staff_without_two_factor_cannot_use_the_admin(client):
    staff = UserFactory(email="staff@example.com", is_staff=True, is_superuser=True)
    client.force_login(staff)
    response = client.get("/admin/")
    assert response.status_code == 302
    assert client.get(response.url).status_code in (302, 200)
    assert reverse("mfa_index") in client.get("/admin/", follow=True).redirect_chain[-1][0]


def test_staff_with_two_factor_sees_every_tenants_audit_rows(client, user_a, user_b):
    from allauth.mfa.totp.internal.auth import TOTP

    from core.audit import audit_record

    audit_record(action="test.a", user=user_a, actor=user_a)
    audit_record(action="test.b", user=user_b, actor=user_b)
    staff = UserFactory(email="staff@example.com", is_staff=True, is_superuser=True)
    with system_context(reason="tests: staff turned on 2FA"):
        TOTP.activate(staff, "JBSWY3DPEHPK3PXP")
    client.force_login(staff)
    response = client.get("/admin/core/auditlog/")
    assert response.status_code == 200
    assert b"test.a" in response.content and b"test.b" in response.content


def test_anonymous_users_are_sent_to_log_in(client):
    response = client.get(reverse("dashboard"))
    assert response.status_code == 302 and response.url.startswith(reverse("account_login"))


def _email(length: int) -> str:
    """A well-formed address of exactly `length` characters: 64 before the @, labels of 63 after it."""
    labels, remaining = [], length - len("a" * 64 + "@") - len(".com")
    while remaining > 64:
        labels.append("b" * 63)
        remaining -= 64
    labels.append("c" * remaining)
    address = "a" * 64 + "@" + ".".join(labels) + ".com"
    assert len(address) == length
    return address


def _sign_up(client, email: str, password: str = "a-strong-pass-2026"):
    return client.post(reverse("account_signup"), {"email": email, "password1": password, "password2": password})


@pytest.mark.parametrize("length", [250, 254])
def test_sign_up_with_an_address_as_long_as_the_rfc_allows(client, length):
    email = _email(length)
    assert _sign_up(client, email).status_code == 302
    with system_context(reason="tests: read the new account back"):
        user = User.objects.get(email=email)
    with tenant(user.pk):
        assert AuditLog.objects.get(user=user, action="account.signed_up").actor_label == email


@pytest.mark.parametrize("length", [255, 300])
def test_sign_up_with_a_longer_address_is_a_form_error(client, length):
    response = _sign_up(client, _email(length))
    assert response.status_code == 200
    assert response.context["form"].errors["email"] == [
        f"Ensure this value has at most 254 characters (it has {length})."
    ]
    with system_context(reason="tests: no account was created"):
        assert not User.objects.exists()


def test_adding_a_312_character_address_is_a_form_error(client):
    user = UserFactory(email="t@example.com")
    client.force_login(user)
    response = client.post(reverse("account_email"), {"email": _email(312), "action_add": ""})
    assert response.status_code == 200
    assert response.context["form"].errors["email"] == ["Ensure this value has at most 254 characters (it has 312)."]
    with tenant(user.pk):
        assert list(EmailAddress.objects.filter(user=user).values_list("email", flat=True)) == ["t@example.com"]


def test_a_100000_character_password_is_refused_with_the_limit(client):
    response = _sign_up(client, "long@example.com", password="correct-horse-" * 7_143)
    assert "This password is 100,002 characters long; use at most 1,024." in response.context["form"].errors[
        "password1"
    ]
    with system_context(reason="tests: no account was created"):
        assert not User.objects.filter(email="long@example.com").exists()
