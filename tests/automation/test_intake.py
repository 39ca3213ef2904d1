"""Incoming webhooks in batches: through the served app (daphne) a burst is answered as one by one would be,
each event recorded once, in fewer transactions than deliveries; the batch service keeps the rule's hourly
limit and its pause within one batch; the ASGI front answers the edge cases itself (too large, wrong host,
database down, too many waiting) and passes everything else to Django."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from asgiref.testing import ApplicationCommunicator
from django.db import OperationalError

from automation import intake
from automation.intake import WebhookIntake
from automation.models import Rule, RuleRun
from automation.services import WebhookRejected, webhook_receive_many
from core.rls import tenant
from tests.automation.conftest import tv_body, webhook_rule
from tests.e2e.conftest import asgi_server  # noqa: F401 - fixture: daphne in a subprocess
from tests.marketdata.conftest import run_async

NOTIFY = {"kind": "notify", "message": "{{rule}}: {{ticker}} {{strategy.order.action}}"}


def _notify_rule(user, paper, **fields):
    return webhook_rule(user, paper, actions=[NOTIFY], daily_order_cap=None, **{"max_runs_per_hour": 120, **fields})


def _signed(rule, data: bytes) -> str:
    return "sha256=" + hmac.new(rule.secret.encode(), data, hashlib.sha256).hexdigest()


def _post(url: str, data: bytes, headers: dict | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=data, method="POST",  # noqa: S310 - the test server
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _batches_recorded(server_url: str) -> float:
    with urllib.request.urlopen(f"{server_url}/metrics", timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    found = re.search(r"^nexus_automation_webhook_batch_size_count (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_a_burst_to_the_server_is_answered_as_one_by_one_and_recorded_once_per_event(asgi_server, user_a, paper):  # noqa: F811
    rule = _notify_rule(user_a, paper)
    url = f"{asgi_server.url}/automation/hooks/{rule.webhook_token}/"
    deliveries: list[tuple[str, bytes, dict]] = []
    for i in range(30):
        data = json.dumps(tv_body(rule, event_id=f"burst-{i}", token="" if i % 2 else None)).encode()
        headers = {"X-Nexus-Signature": _signed(rule, data)} if i % 2 else {}
        deliveries.append((f"burst-{i}", data, headers))
    deliveries += deliveries[:6]  # a sender retrying at once: one of the two is run, the other refused
    deliveries += [
        ("bad secret", json.dumps(tv_body(rule, event_id="x-1", token="wrong")).encode(), {}),
        ("not json", b"{nope", {}),
    ]
    before = _batches_recorded(asgi_server.url)
    with ThreadPoolExecutor(max_workers=len(deliveries)) as pool:
        answers = list(pool.map(lambda d: _post(url, d[1], d[2]), deliveries))
    unknown = _post(f"{asgi_server.url}/automation/hooks/no-such-token/", deliveries[0][1])
    batches = _batches_recorded(asgi_server.url) - before

    repeated = [sorted([answers[i], answers[30 + i]], key=lambda answer: answer[0]) for i in range(6)]
    assert all(first[0] == 202 and second[0] == 409 and "already received" in second[1]["detail"]
               for first, second in repeated), repeated
    accepted = [answer for answer in answers[6:30]] + [first for first, _ in repeated]
    assert all(status == 202 for status, _ in accepted), accepted
    assert len({body["run"] for _, body in accepted}) == 30
    assert answers[36][0] == 403 and "secret token" in answers[36][1]["detail"]
    assert answers[37][0] == 400 and "not valid JSON" in answers[37][1]["detail"]
    assert unknown[0] == 404 and unknown[1]["title"] and "No rule" in unknown[1]["detail"]
    with tenant(user_a.pk):
        recorded = sorted(RuleRun.objects.filter(rule=rule).values_list("event_id", flat=True))
    assert recorded == sorted(f"webhook:burst-{i}" for i in range(30))
    # Delivered at once, written together: fewer transactions than deliveries.
    assert 1 <= batches < len(deliveries)


# --- the batch service --------------------------------------------------------------------------------------


def _delivery(rule, event_id: str, **body) -> tuple[str, bytes, str]:
    return (rule.webhook_token, json.dumps(tv_body(rule, event_id=event_id, **body)).encode(), "")


def test_one_batch_keeps_the_hourly_limit_and_refuses_its_own_repeats(user_a, paper):
    rule = _notify_rule(user_a, paper, max_runs_per_hour=2)
    outcomes = webhook_receive_many([_delivery(rule, f"l-{i}") for i in range(4)] + [_delivery(rule, "l-0")])
    assert [o.status for o in outcomes[:4]] == ["pending", "pending", "skipped", "skipped"]
    assert outcomes[2].detail == "Rate limit: the rule already ran 2 times in the last hour."
    assert isinstance(outcomes[4], WebhookRejected) and outcomes[4].status == 409
    # The next batch counts what the first recorded.
    (later,) = webhook_receive_many([_delivery(rule, "l-9")])
    assert later.status == "skipped"
    with tenant(user_a.pk):
        assert dict(RuleRun.objects.filter(rule=rule).values_list("event_id", "status")) == {
            "webhook:l-0": "pending", "webhook:l-1": "pending", "webhook:l-2": "skipped",
            "webhook:l-3": "skipped", "webhook:l-9": "skipped",
        }


def test_a_batch_answers_each_delivery_in_order_and_skips_a_paused_rules(user_a, user_b, paper):
    from tests.trading.conftest import paper_setup

    live, paused = _notify_rule(user_a, paper), _notify_rule(user_b, paper_setup(user_b))
    with tenant(user_b.pk):
        Rule.objects.filter(pk=paused.pk).update(status="paused")
    outcomes = webhook_receive_many([
        _delivery(paused, "p-1"),
        ("nobody", b"{}", ""),
        _delivery(live, "a-1"),
        (live.webhook_token, json.dumps({**tv_body(live, event_id="a-2"), "ticker": None}).encode(), ""),
        _delivery(live, "a-3", at=time.time() - 3600),
    ])
    assert outcomes[0].status == "skipped" and outcomes[0].detail == "The rule is paused."
    assert [getattr(o, "status", None) for o in outcomes[1:]] == [404, "pending", 400, 409]
    assert outcomes[2].user_id == user_a.pk and outcomes[0].user_id == user_b.pk
    with tenant(user_a.pk):  # each trader's runs are theirs (row-level security)
        assert list(RuleRun.objects.values_list("event_id", flat=True)) == ["webhook:a-1"]


# --- the ASGI front ---------------------------------------------------------------------------------------


def _scope(path: str, *, method: str = "POST", host: bytes = b"testserver") -> dict:
    return {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
            "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
            "headers": [(b"host", host), (b"content-type", b"application/json")], "client": ("127.0.0.1", 5000),
            "server": ("testserver", 80)}


async def _call(app, scope: dict, *chunks: bytes) -> tuple[int, dict, bytes]:
    communicator = ApplicationCommunicator(app, scope)
    for i, chunk in enumerate(chunks or (b"",)):
        await communicator.send_input({"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1})
    start = await communicator.receive_output(timeout=10)
    body = await communicator.receive_output(timeout=10)
    await communicator.wait(timeout=10)
    return start["status"], dict(start["headers"]), body["body"]


class _Django:
    """What stands behind the front: records that a request reached it."""

    def __init__(self) -> None:
        self.paths: list[tuple[str, str]] = []

    async def __call__(self, scope, receive, send) -> None:
        self.paths.append((scope["method"], scope["path"]))
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})


def test_the_front_passes_other_requests_to_django_and_refuses_what_it_cannot_take(user_a, paper, monkeypatch):
    rule = _notify_rule(user_a, paper)
    path = f"/automation/hooks/{rule.webhook_token}/"
    django_app = _Django()
    front = WebhookIntake(django_app)

    async def scenario():
        other = await _call(front, _scope("/automation/"))
        get = await _call(front, _scope(path, method="GET"))
        deeper = await _call(front, _scope(path + "more/"))
        too_large = await _call(front, _scope(path), b"x" * 40_000, b"x" * 40_000)
        wrong_host = await _call(front, _scope(path, host=b"evil.example"), b"{}")
        accepted = await _call(front, _scope(path), json.dumps(tv_body(rule, event_id="front-1")).encode())
        return other, get, deeper, too_large, wrong_host, accepted

    other, get, deeper, too_large, wrong_host, accepted = run_async(scenario)
    assert [status for status, _, _ in (other, get, deeper)] == [204, 204, 204]
    assert django_app.paths == [("POST", "/automation/"), ("GET", path), ("POST", path + "more/")]
    assert too_large[0] == 413 and too_large[1][b"content-type"] == b"application/problem+json"
    assert json.loads(too_large[2])["detail"] == "The body is larger than 64 KiB."
    assert wrong_host[0] == 400
    assert accepted[0] == 202 and json.loads(accepted[2])["status"] == "pending"
    with tenant(user_a.pk):
        assert list(RuleRun.objects.filter(rule=rule).values_list("event_id", flat=True)) == ["webhook:front-1"]


def test_the_front_answers_503_with_retry_after_when_the_database_is_down_or_too_many_wait(user_a, paper, monkeypatch):
    rule = _notify_rule(user_a, paper)
    path = f"/automation/hooks/{rule.webhook_token}/"
    body = json.dumps(tv_body(rule, event_id="down-1")).encode()

    def database_down(deliveries):
        raise OperationalError("connection refused")

    monkeypatch.setattr(intake, "webhook_receive_many", database_down)
    async def once():
        return await _call(WebhookIntake(_Django()), _scope(path), body)

    status, headers, content = run_async(once)
    assert status == 503 and headers[b"retry-after"] and "database is unavailable" in json.loads(content)["detail"]

    release = asyncio.Event()
    front = WebhookIntake(_Django(), max_waiting=1, writers=1)

    def slow(deliveries):
        while not release.is_set():
            time.sleep(0.01)
        return [WebhookRejected(404, "No rule has this webhook URL.")] * len(deliveries)

    monkeypatch.setattr(intake, "webhook_receive_many", slow)

    async def crowded():
        first = asyncio.ensure_future(_call(front, _scope(path), body))  # being recorded
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(_call(front, _scope(path), body))  # waits its turn
        await asyncio.sleep(0.05)
        third = await _call(front, _scope(path), body)  # one too many
        release.set()
        return await first, await second, third

    first, second, third = run_async(crowded)
    assert third[0] == 503 and third[1][b"retry-after"] == b"1" and "Too many" in json.loads(third[2])["detail"]
    assert first[0] == 404 and second[0] == 404
    with tenant(user_a.pk):
        assert not RuleRun.objects.filter(rule=rule).exists()


def test_the_web_pool_holds_a_connection_for_each_intake_writer_beyond_the_requests_it_admits():
    """Requests admitted into Django (at most WEB_HTTP_MAX_INSIDE, the pool's size by default, of which
    WEB_HTTP_CONCURRENCY run until they stall) never wait for a connection the intake's writers hold: the
    pool has one more per writer."""
    import os
    import subprocess
    import sys

    probe = ("import django; django.setup(); from django.conf import settings as s; "
             "print(s.DATABASES['default']['OPTIONS']['pool']['max_size'], s.WEB_HTTP_MAX_INSIDE, "
             "s.WEB_HTTP_CONCURRENCY, s.AUTOMATION_INTAKE_WRITERS)")
    env = {**os.environ, "DB_POOL_SIZE": "10", "AUTOMATION_INTAKE_WRITERS": "3"}
    for name in ("WEB_HTTP_CONCURRENCY", "WEB_HTTP_MAX_INSIDE"):
        env.pop(name, None)
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["13", "10", "3", "3"]


def test_a_signed_in_browser_posting_to_a_hook_is_answered_as_any_sender(client, user_a, user_b, paper):
    """Through Django (the test client, a WSGI server) a session on the hook URL acts as no one: the run is
    recorded as its rule's owner's, whoever's browser posted it."""
    from tests.automation.conftest import post_hook

    rule = _notify_rule(user_a, paper)
    client.force_login(user_b)
    response = post_hook(client, rule, tv_body(rule, event_id="from-a-browser"))
    assert response.status_code == 202, response.content
    with tenant(user_a.pk):
        assert RuleRun.objects.get(pk=response.json()["run"]).user_id == user_a.pk
    with tenant(user_b.pk):
        assert not RuleRun.objects.exists()
