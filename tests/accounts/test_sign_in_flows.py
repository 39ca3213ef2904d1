"""The sign-in flows end to end behind the database wall (docs/security.md), through the real pages.

- Google login: the real allauth views; Google itself is faked at the HTTP layer (`responses`), with the
  token endpoint answering a real-shaped token response and an RS256 id_token signed by a key of the test.
- Password login with two-factor authentication, then the admin.
- Sign-in runs in the auth context and never enters the cross-tenant (system) role.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
import pytest
import responses
from allauth.account.models import EmailAddress
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, hotp_value
from allauth.socialaccount.models import SocialAccount
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.core import mail
from django.db import connections
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

import core.rls
from accounts.models import User
from core.audit import audit_record
from core.rls import system_context
from tests.factories import DEFAULT_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

CLIENT_ID = "123456789012-nexustestclient.apps.googleusercontent.com"
CLIENT_SECRET = "GOCSPX-nexus-test-secret"  # noqa: S105
AUTHORIZE_URL = "https://accounts.google.com/o/oauth2/v2/auth"
TOKEN_URL = "https://oauth2.googleapis.com/token"  # noqa: S105
CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
USERINFO_URL = "https://www.googleapis.com/oauth2/v2/userinfo"
CALLBACK_PATH = "/accounts/google/login/callback/"
TOTP_SECRET = "JBSWY3DPEHPK3PXP"


# --- a fake Google at the HTTP boundary ----------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    """A Google account: `sub` is Google's stable id, the email may change."""

    sub: str
    email: str
    given_name: str = "Grace"
    family_name: str = "Hopper"
    email_verified: bool = True

    @property
    def name(self) -> str:
        return f"{self.given_name} {self.family_name}"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signing_key() -> tuple[rsa.RSAPrivateKey, str]:
    """An RSA key and a self-signed certificate for it, in the PEM form Google's v1 certs endpoint serves."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "federated-signon.system.gserviceaccount.com")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=14))
        .sign(key, hashes.SHA256())
    )
    return key, cert.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class FakeGoogle:
    """Google's side of the authorization-code flow: the consent screen, the token endpoint, the certs and
    the userinfo endpoint. `include_id_token=False` answers the token request without an id_token, so that
    allauth reads the profile from the userinfo endpoint instead."""

    mock: responses.RequestsMock
    include_id_token: bool = True
    key: rsa.RSAPrivateKey = field(init=False)
    kid: str = field(default_factory=lambda: secrets.token_hex(20))
    codes: dict[str, tuple[Person, dict[str, str]]] = field(default_factory=dict)
    tokens: dict[str, Person] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    userinfo_requests: int = 0

    def __post_init__(self) -> None:
        self.key, certificate = _signing_key()
        self.mock.add_callback(responses.POST, TOKEN_URL, callback=self._token)
        self.mock.add_callback(responses.GET, USERINFO_URL, callback=self._userinfo)
        # allauth skips the signature check of an id_token it fetched itself over TLS (OpenID Connect Core
        # 3.1.3.7); should it ever check it, the key is published where Google publishes its own.
        self.mock.add(responses.GET, CERTS_URL, json={self.kid: certificate})

    def consent(self, authorize_url: str, person: Person) -> str:
        """`person` agrees on Google's screen: the callback path (with `state` and `code`) Google sends the
        browser back to."""
        parts = urlsplit(authorize_url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == AUTHORIZE_URL
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        assert query["client_id"] == CLIENT_ID and query["response_type"] == "code"
        assert set(query["scope"].split()) == {"profile", "email"}
        redirect = urlsplit(query["redirect_uri"])
        assert redirect.path == CALLBACK_PATH
        code = "4/0A" + secrets.token_urlsafe(32)
        self.codes[code] = (person, query)
        return f"{redirect.path}?{urlencode({'state': query['state'], 'code': code, 'scope': self._scope()})}"

    @staticmethod
    def _scope() -> str:
        return "email profile https://www.googleapis.com/auth/userinfo.profile " \
               "https://www.googleapis.com/auth/userinfo.email openid"

    def _error(self, error: str, description: str):
        return 400, {"Content-Type": "application/json"}, json.dumps({"error": error, "error_description": description})

    def _token(self, request):
        body = {name: values[0] for name, values in parse_qs(request.body).items()}
        self.token_requests.append(body)
        if body.get("client_id") != CLIENT_ID or body.get("client_secret") != CLIENT_SECRET:
            return 401, {"Content-Type": "application/json"}, json.dumps({"error": "invalid_client"})
        if body.get("grant_type") != "authorization_code" or body.get("code") not in self.codes:
            return self._error("invalid_grant", "Malformed auth code.")
        person, authorize = self.codes.pop(body["code"])  # a code is good once
        if body.get("redirect_uri") != authorize["redirect_uri"]:
            return self._error("redirect_uri_mismatch", "Bad Request")
        if "code_challenge" in authorize:
            digest = _b64url(hashlib.sha256(body.get("code_verifier", "").encode()).digest())
            if digest != authorize["code_challenge"]:
                return self._error("invalid_grant", "Invalid code verifier.")
        access_token = "ya29.a0" + secrets.token_urlsafe(48)
        self.tokens[access_token] = person
        payload = {
            "access_token": access_token,
            "expires_in": 3599,
            "scope": self._scope(),
            "token_type": "Bearer",
        }
        if self.include_id_token:
            payload["id_token"] = self.id_token(person, access_token=access_token)
        return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(payload)

    def id_token(self, person: Person, *, access_token: str) -> str:
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "azp": CLIENT_ID,
            "aud": CLIENT_ID,
            "sub": person.sub,
            "email": person.email,
            "email_verified": person.email_verified,
            "at_hash": _b64url(hashlib.sha256(access_token.encode()).digest()[:16]),
            "name": person.name,
            "picture": "https://lh3.googleusercontent.com/a/ACg8ocK-nexus-test=s96-c",
            "given_name": person.given_name,
            "family_name": person.family_name,
            "iat": now,
            "exp": now + 3600,
        }
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})

    def _userinfo(self, request):
        self.userinfo_requests += 1
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        person = self.tokens.get(token) if scheme == "Bearer" else None
        if person is None:
            return 401, {"Content-Type": "application/json"}, json.dumps(
                {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                           "status": "UNAUTHENTICATED"}}
            )
        return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps({
            "id": person.sub,
            "email": person.email,
            "verified_email": person.email_verified,
            "name": person.name,
            "given_name": person.given_name,
            "family_name": person.family_name,
            "picture": "https://lh3.googleusercontent.com/a/ACg8ocK-nexus-test=s96-c",
        })


@pytest.fixture
def google_app(settings):
    """The Google provider configured as config/settings/base.py does from GOOGLE_CLIENT_ID."""
    settings.GOOGLE_CLIENT_ID = CLIENT_ID
    settings.GOOGLE_CLIENT_SECRET = CLIENT_SECRET
    settings.SOCIALACCOUNT_PROVIDERS = {
        "google": {
            "APPS": [{"client_id": CLIENT_ID, "secret": CLIENT_SECRET, "key": ""}],
            "SCOPE": ["profile", "email"],
        }
    }


@pytest.fixture
def google(google_app):
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeGoogle(mock)


def google_login(client, google: FakeGoogle, person: Person):
    """Press "Sign in with Google", agree on Google's screen, come back: the callback's response."""
    start = client.post(reverse("google_login"))
    assert start.status_code == 302, start
    return client.get(google.consent(start.url, person))


def signed_in_user_id(client) -> int | None:
    value = client.session.get("_auth_user_id")
    return int(value) if value is not None else None


# --- Google -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("include_id_token", [True, False], ids=["id_token", "userinfo"])
def test_a_new_google_user_gets_an_account_and_the_second_login_finds_it(client, google, include_id_token):
    google.include_id_token = include_id_token
    grace = Person(sub="109876543210987654321", email="grace.hopper@gmail.com")

    callback = google_login(client, google, grace)

    assert callback.status_code == 302 and callback.url == reverse("dashboard"), callback
    assert len(google.token_requests) == 1
    assert google.userinfo_requests == (0 if include_id_token else 1)
    assert client.get(reverse("dashboard")).status_code == 200
    user_id = signed_in_user_id(client)
    with system_context(reason="tests: read the Google sign-up back"):
        user = User.objects.get(email="grace.hopper@gmail.com")
        social = SocialAccount.objects.get(provider="google", uid=grace.sub)
        email = EmailAddress.objects.get(email="grace.hopper@gmail.com")
        user.refresh_from_db(fields=["password"])
    assert user.pk == user_id
    assert social.user_id == user.pk and social.extra_data["email"] == grace.email
    assert email.user_id == user.pk and email.verified and email.primary
    assert not user.has_usable_password()

    client.post(reverse("account_logout"))
    assert signed_in_user_id(client) is None

    again = google_login(client, google, grace)

    assert again.status_code == 302 and again.url == reverse("dashboard"), again
    assert signed_in_user_id(client) == user.pk
    assert client.get(reverse("dashboard")).status_code == 200
    with system_context(reason="tests: still one account"):
        assert User.objects.count() == 1
        assert SocialAccount.objects.filter(provider="google").count() == 1


def test_an_email_password_user_signs_in_with_google_into_the_same_account(client, google):
    carol = UserFactory(email="carol@example.com")

    callback = google_login(client, google, Person(sub="100000000000000000042", email="carol@example.com"))

    assert callback.status_code == 302 and callback.url == reverse("dashboard"), callback
    assert signed_in_user_id(client) == carol.pk
    assert client.get(reverse("dashboard")).status_code == 200
    with system_context(reason="tests: no second account for the same address"):
        assert list(User.objects.values_list("pk", flat=True)) == [carol.pk]
        assert EmailAddress.objects.filter(email="carol@example.com").count() == 1
        carol.refresh_from_db(fields=["password"])
    assert carol.check_password(DEFAULT_PASSWORD), "the password still works"


def test_an_unverified_google_address_does_not_take_over_an_existing_account(client, google):
    carol = UserFactory(email="carol@example.com")

    callback = google_login(
        client, google, Person(sub="100000000000000000666", email="carol@example.com", email_verified=False)
    )

    assert callback.status_code == 302 and callback.url == reverse("account_email_verification_sent")
    assert signed_in_user_id(client) is None
    assert [message.to for message in mail.outbox] == [["carol@example.com"]], "the owner must confirm first"
    with system_context(reason="tests: nothing was linked to Carol's account"):
        assert list(User.objects.values_list("pk", flat=True)) == [carol.pk]
        assert not SocialAccount.objects.exists()


# --- password and two-factor, then the admin ------------------------------------------------------------


def _totp_now(secret: str) -> tuple[str, set[str]]:
    """The current code, and every code allauth could accept around now (to pick a wrong one)."""
    counter = int(time.time()) // 30
    return (
        format_hotp_value(hotp_value(secret, counter)),
        {format_hotp_value(hotp_value(secret, counter + drift)) for drift in range(-2, 3)},
    )


def _wrong_code(secret: str) -> str:
    _, accepted = _totp_now(secret)
    return next(code for code in (f"{n:06d}" for n in range(0, 1_000_000, 111_111)) if code not in accepted)


def _with_two_factor(user):
    with system_context(reason="tests: the user turned on 2FA"):
        TOTP.activate(user, TOTP_SECRET)
    return user


def test_staff_log_in_with_two_factor_through_the_pages_and_see_every_tenants_audit_rows(client, user_a, user_b):
    audit_record(action="test.a", user=user_a, actor=user_a)
    audit_record(action="test.b", user=user_b, actor=user_b)
    staff = _with_two_factor(UserFactory(email="staff@example.com", is_staff=True, is_superuser=True))

    response = client.post(reverse("account_login"), {"login": "staff@example.com", "password": DEFAULT_PASSWORD})

    assert response.status_code == 302 and response.url == reverse("mfa_authenticate")
    assert signed_in_user_id(client) is None, "the password alone must not sign in"
    assert client.get("/admin/").status_code == 302
    page = client.get(reverse("mfa_authenticate"))
    assert page.status_code == 200

    wrong = client.post(reverse("mfa_authenticate"), {"code": _wrong_code(TOTP_SECRET)})
    assert wrong.status_code == 200 and wrong.context["form"].errors["code"]
    assert signed_in_user_id(client) is None

    right = client.post(reverse("mfa_authenticate"), {"code": _totp_now(TOTP_SECRET)[0]})
    assert right.status_code == 302, right
    assert signed_in_user_id(client) == staff.pk

    assert client.get("/admin/").status_code == 200
    audit = client.get("/admin/core/auditlog/")
    assert audit.status_code == 200
    assert b"test.a" in audit.content and b"test.b" in audit.content


def test_a_trader_with_two_factor_signs_in_but_gets_no_admin(client):
    trader = _with_two_factor(UserFactory(email="trader@example.com"))

    client.post(reverse("account_login"), {"login": "trader@example.com", "password": DEFAULT_PASSWORD})
    client.post(reverse("mfa_authenticate"), {"code": _totp_now(TOTP_SECRET)[0]})
    assert signed_in_user_id(client) == trader.pk
    assert client.get(reverse("dashboard")).status_code == 200

    assert client.get("/admin/").status_code == 302
    landing = client.get("/admin/core/auditlog/", follow=True)
    assert landing.status_code == 200 and landing.redirect_chain[-1][0] == reverse("dashboard")
    assert b"Nexus administration" not in landing.content


# --- sign-in never uses the cross-tenant role -------------------------------------------------------------


class ContextSpy:
    """Records every `rls.system_context` / `rls.auth_context` entry (both log one at debug, whoever calls
    them) and every statement sent on the system role's connection."""

    def __init__(self, logger) -> None:
        self._logger = logger
        self.entries: list[tuple[str, dict]] = []

    def debug(self, event, **kw):
        if event in ("rls.system_context", "rls.auth_context"):
            self.entries.append((event, kw))
        return self._logger.debug(event, **kw)

    def __getattr__(self, name):
        return getattr(self._logger, name)

    def reasons(self, event: str) -> list[str]:
        return [kw["reason"] for name, kw in self.entries if name == event]


@pytest.fixture
def contexts(monkeypatch):
    spy = ContextSpy(core.rls.logger)
    monkeypatch.setattr(core.rls, "logger", spy)

    def watching():
        spy.entries.clear()
        return CaptureQueriesContext(connections[core.rls.SYSTEM_ALIAS])

    spy.watching = watching
    return spy


def test_a_password_login_and_its_two_factor_step_never_enter_the_system_context(client, contexts):
    _with_two_factor(UserFactory(email="mfa@example.com"))

    with contexts.watching() as system_queries:
        response = client.post(reverse("account_login"), {"login": "mfa@example.com", "password": DEFAULT_PASSWORD})
    assert response.status_code == 302 and response.url == reverse("mfa_authenticate")
    assert contexts.reasons("rls.system_context") == [] and len(system_queries) == 0
    assert "sign-in: POST /accounts/login/" in contexts.reasons("rls.auth_context")

    with contexts.watching() as system_queries:
        client.post(reverse("mfa_authenticate"), {"code": _wrong_code(TOTP_SECRET)})
        response = client.post(reverse("mfa_authenticate"), {"code": _totp_now(TOTP_SECRET)[0]})
    assert response.status_code == 302 and signed_in_user_id(client) is not None
    assert contexts.reasons("rls.system_context") == [] and len(system_queries) == 0
    assert contexts.reasons("rls.auth_context").count("sign-in: POST /accounts/2fa/authenticate/") == 2


def test_a_login_without_two_factor_never_enters_the_system_context(client, contexts):
    user = UserFactory(email="plain@example.com")

    with contexts.watching() as system_queries:
        response = client.post(reverse("account_login"), {"login": "plain@example.com", "password": DEFAULT_PASSWORD})
    assert response.status_code == 302 and signed_in_user_id(client) == user.pk
    assert contexts.reasons("rls.system_context") == [] and len(system_queries) == 0
    assert contexts.reasons("rls.auth_context") == ["sign-in: POST /accounts/login/"]


def test_a_google_sign_up_never_enters_the_system_context(client, google, contexts):
    with contexts.watching() as system_queries:
        response = google_login(client, google, Person(sub="109999999999999999999", email="new@gmail.com"))
    assert response.status_code == 302 and signed_in_user_id(client) is not None
    assert contexts.reasons("rls.system_context") == [] and len(system_queries) == 0
    assert contexts.reasons("rls.auth_context") == [
        "sign-in: POST /accounts/google/login/", "sign-in: GET /accounts/google/login/callback/",
    ]


def test_the_spy_sees_the_system_context_when_it_is_used(contexts, user_a):
    """The control for the tests above: an empty record means nothing was entered, not a deaf spy."""
    with contexts.watching() as system_queries:
        audit_record(action="test.no_tenant", user=None)
    assert contexts.reasons("rls.system_context") == ["audit test.no_tenant"] and len(system_queries) > 0
