"""Outgoing webhook calls: where they may go, how they are signed, and one attempt at sending.

A rule's "call a webhook" action POSTs JSON to the trader's URL, signed like incoming webhooks:
`X-Nexus-Signature: sha256=<hex HMAC-SHA256 of the body with the rule's secret>` and `X-Nexus-Timestamp`.

The URL is the trader's, so it is checked before every attempt (DNS can change between attempts): the host
is resolved and every address must be public. Private (10/8, 172.16/12, 192.168/16, fc00::/7), loopback,
link-local (169.254/16 with the cloud metadata address, fe80::/10), multicast, reserved and unspecified
addresses are refused, unless AUTOMATION_WEBHOOK_ALLOW_PRIVATE is on (development: settings.DEBUG turns it
on by default). The connection goes to an address checked here (a host re-resolving between the check
and the connection could not reach a private address), with the Host header and TLS name of the URL.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from django.conf import settings
from requests.adapters import HTTPAdapter

TIMEOUT = (5, 10)
MAX_URL_LENGTH = 500


class WebhookRefused(Exception):
    """The URL may not be called (scheme, host or address); retrying cannot help."""


class WebhookFailed(Exception):
    """The call failed (network, timeout, non-2xx); it is retried with backoff."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(signature(secret, body), (header or "").strip())


def private_allowed() -> bool:
    return bool(getattr(settings, "AUTOMATION_WEBHOOK_ALLOW_PRIVATE", False))


def url_check(url: str) -> None:
    """Refuse a URL that is not http(s) with a host (at save time; addresses are checked at send time)."""
    if len(url) > MAX_URL_LENGTH:
        raise WebhookRefused(f"The URL is longer than {MAX_URL_LENGTH} characters.")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise WebhookRefused("The webhook URL must start with https:// (or http://) and name a host.")
    if parts.username or parts.password:
        raise WebhookRefused("The webhook URL may not carry a user name or password.")


def address_problem(address: str) -> str | None:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for test, label in (
        (ip.is_loopback, "a loopback"),
        (ip.is_link_local, "a link-local"),
        (ip.is_private, "a private"),
        (ip.is_multicast, "a multicast"),
        (ip.is_reserved, "a reserved"),
        (ip.is_unspecified, "an unspecified"),
    ):
        if test:
            return f"{address} is {label} address"
    if not ip.is_global:
        return f"{address} is not a public address"
    return None


def resolve_public(url: str) -> tuple[str, int, str]:
    """(host, port, address to connect to): every address of the host checked. Raises WebhookRefused."""
    url_check(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise WebhookFailed(f"The host {host} could not be resolved ({exc.strerror}).") from exc
    addresses = sorted({info[4][0] for info in infos})
    if not addresses:
        raise WebhookFailed(f"The host {host} has no address.")
    if not private_allowed():
        for address in addresses:
            problem = address_problem(address)
            if problem:
                raise WebhookRefused(
                    f"Refused to call {host}: {problem}. Webhooks go to public addresses only."
                )
    return host, port, addresses[0]


class _PinnedAdapter(HTTPAdapter):
    """Connects to the checked address while the request keeps its URL (Host header, TLS SNI and cert)."""

    def __init__(self, host: str, address: str) -> None:
        self._host, self._address = host, address
        super().__init__(max_retries=0)

    def send(self, request, **kwargs):
        connection_host = self._address if ":" not in self._address else f"[{self._address}]"
        request.url = request.url.replace(f"//{self._host}", f"//{connection_host}", 1)
        return super().send(request, **kwargs)

    def init_poolmanager(self, *args, **kwargs):
        kwargs["server_hostname"] = self._host
        kwargs["assert_hostname"] = self._host
        super().init_poolmanager(*args, **kwargs)


@dataclass(frozen=True)
class Sent:
    status: int


def webhook_send(*, url: str, body: bytes, secret: str, timestamp: int) -> Sent:
    """One POST attempt. WebhookRefused: never retry; WebhookFailed: retry later."""
    host, port, address = resolve_public(url)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "Nexus-Automation/1",
        "X-Nexus-Timestamp": str(timestamp),
        "X-Nexus-Signature": signature(secret, body),
        "Host": host if port in (80, 443) else f"{host}:{port}",
    }
    session = requests.Session()
    session.trust_env = False
    session.mount(f"{urlsplit(url).scheme}://{host}", _PinnedAdapter(host, address))
    try:
        response = session.post(url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False)
    except requests.RequestException as exc:
        raise WebhookFailed(f"The call failed: {exc.__class__.__name__}.") from exc
    finally:
        session.close()
    if 200 <= response.status_code < 300:
        return Sent(status=response.status_code)
    raise WebhookFailed(f"The endpoint answered {response.status_code}.", status=response.status_code)
