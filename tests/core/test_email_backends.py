"""Email backends that honour idempotency keys: Resend's HTTP API (through anymail, against a local server
answering as Resend does) and the idempotent file backend."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.core.mail import EmailMessage

from core.email_backends import IdempotentFileBackend, ResendEmailBackend
from tests.newsletter.mailbox import dropped, per_recipient


class _Resend(BaseHTTPRequestHandler):
    requests: list[tuple[str, dict[str, str], dict]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append((self.path, dict(self.headers), body))
        answer = json.dumps({"id": "49a3999c-0ce1-4ea6-ab68-afcd6dc2e794"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def resend_url():
    _Resend.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Resend)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def _message(key: str | None, to: str = "reader@example.com") -> EmailMessage:
    message = EmailMessage(subject="Weekly", body="Markets moved.", from_email="news@nexus.test", to=[to])
    if key is not None:
        message.idempotency_key = key  # type: ignore[attr-defined]
    return message


def test_resend_gets_the_idempotency_key_as_its_http_header(resend_url):
    backend = ResendEmailBackend(api_key="re_test_key", api_url=resend_url)
    assert backend.send_messages([_message("newsletter/7/42"), _message(None)]) == 2

    (path, headers, body), (_, plain_headers, _) = _Resend.requests
    assert path == "/emails" and headers["Authorization"] == "Bearer re_test_key"
    assert headers["Idempotency-Key"] == "newsletter/7/42"
    assert body["to"] == ["reader@example.com"] and body["subject"] == "Weekly"
    assert "Idempotency-Key" not in json.dumps(body)  # not an email header: the recipient never sees it
    assert "Idempotency-Key" not in plain_headers


def test_a_key_longer_than_resend_allows_is_refused_before_sending(resend_url):
    backend = ResendEmailBackend(api_key="re_test_key", api_url=resend_url, fail_silently=False)
    with pytest.raises(ValueError, match="1 to 256 characters"):
        backend.send_messages([_message("x" * 257)])
    assert _Resend.requests == []


def test_the_file_backend_keeps_one_copy_per_key_and_logs_the_repeats(tmp_path):
    first = IdempotentFileBackend(file_path=str(tmp_path))
    second = IdempotentFileBackend(file_path=str(tmp_path))  # another worker process, same mailbox
    assert first.send_messages([_message("newsletter/1/1", "a@example.com"), _message(None, "b@example.com")]) == 2
    assert second.send_messages([_message("newsletter/1/1", "a@example.com")]) == 1  # accepted, not delivered

    assert per_recipient(tmp_path) == {"a@example.com": 1, "b@example.com": 1}
    assert dropped(tmp_path) == ["newsletter/1/1"]
    assert not list(tmp_path.glob("*.partial"))
