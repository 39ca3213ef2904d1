"""A local stand-in for OpenAI's Chat Completions endpoint that replays recorded responses.

The real `openai` client talks HTTP to it on 127.0.0.1, so everything from JSON encoding, headers and
retries (Retry-After) to timeouts runs as in production. Use it as a context manager:

    with RecordedOpenAIServer([load_recording("tool_loop_1_tool_calls"), load_recording("tool_loop_2_final")]) as server:
        provider = OpenAIProvider(api_key="sk-test", model="gpt-4o-mini", base_url=server.base_url)
        ...
        server.requests      # the JSON bodies received, in order
        server.exchanges     # the same with method, path, headers, arrival time and the status served

or `server.configure(settings)` (pytest-django's `settings` fixture) to point OPENAI_* at it, so that
`openai_provider_from_settings()` and the companion service use it.

Each entry of `responses` answers one request, in order. An entry is either
- a recording: {"status": 429, "headers": {"retry-after": "1"}, "body": {...}, "delay": 0.0} (only "body"
  is required, or "raw": a text body served as text/html; status defaults to 200; `delay` adds to the
  server's own), as stored in tests/bot/recordings/;
- a bare Chat Completions body ({"object": "chat.completion", ...}), served with status 200;
- a callable taking the request's JSON body and returning either of the above (for answers that depend on
  the conversation, e.g. a benchmark's tool loop).
With `cycle=True` the entries are reused round robin (a benchmark); otherwise a request beyond the last entry
gets a 500 whose message says so, which fails the test that made it.
`delay` (seconds) is added before every response; closing the server cuts any delay short.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RECORDINGS = Path(__file__).resolve().parent / "recordings"

Response = dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]]


def load_recording(name: str) -> dict[str, Any]:
    """A recording from tests/bot/recordings/ (`name` without .json): {"status", "headers", "body"}."""
    return json.loads((RECORDINGS / f"{name}.json").read_text())


@dataclass(frozen=True)
class Exchange:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    received_at: float  # time.monotonic()
    status: int


class RecordedOpenAIServer:
    def __init__(self, responses: list[Response], delay: float = 0, *, cycle: bool = False) -> None:
        if cycle and not responses:
            raise ValueError("cycle=True needs at least one response")
        self._responses = list(responses)
        self._cycle = cycle
        self._served = 0
        self.delay = delay
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.recorded = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="recorded-openai",
            daemon=True,
        )
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def requests(self) -> list[Any]:
        """The JSON bodies received, in arrival order."""
        with self._lock:
            return [exchange.body for exchange in self.exchanges]

    def configure(
        self, settings: Any, *, model: str = "gpt-4o-mini", timeout_seconds: float = 5.0, max_retries: int = 0
    ) -> None:
        """Point the OPENAI_* settings at this server (`settings`: pytest-django's fixture or django.conf's),
        so `openai_provider_from_settings()` and the companion talk to it."""
        settings.OPENAI_API_KEY = "sk-recorded-test-key"
        settings.OPENAI_BASE_URL = self.base_url
        settings.OPENAI_MODEL = model
        settings.OPENAI_TIMEOUT_SECONDS = timeout_seconds
        settings.OPENAI_MAX_RETRIES = max_retries

    def close(self) -> None:
        self._closing.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> RecordedOpenAIServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _next(self, body: Any) -> dict[str, Any]:
        with self._lock:
            index = self._served
            self._served += 1
        if self._cycle:
            entry = self._responses[index % len(self._responses)]
        elif index < len(self._responses):
            entry = self._responses[index]
        else:
            return _error_recording(
                500, f"RecordedOpenAIServer: request {index + 1} but only {len(self._responses)} recorded"
            )
        if callable(entry):
            entry = entry(body)
        if "body" not in entry and "raw" not in entry:  # a bare Chat Completions body
            return {"status": 200, "headers": {}, "body": entry}
        return entry

    def _record(self, exchange: Exchange) -> None:
        with self._lock:
            self.exchanges.append(exchange)


def _error_recording(status: int, message: str, *, error_type: str = "server_error") -> dict[str, Any]:
    return {
        "status": status,
        "headers": {},
        "body": {"error": {"message": message, "type": error_type, "param": None, "code": None}},
    }


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default listen backlog is 5: fifty clients connecting at once on a busy machine
    # overflowed it and the kernel reset the connections the server had not accepted yet.
    request_queue_size = 128
    block_on_close = False
    recorded: RecordedOpenAIServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's connection pool expects

    def do_POST(self) -> None:
        recorded = self.server.recorded
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length)
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        if self.path.rstrip("/") != "/v1/chat/completions":
            recording = _error_recording(
                404, f"Invalid URL (POST {self.path})", error_type="invalid_request_error"
            )
        elif not isinstance(body, dict):
            recording = _error_recording(400, "We could not parse the JSON body of your request.")
        else:
            recording = recorded._next(body)
        status = int(recording.get("status", 200))
        recorded._record(
            Exchange(
                method="POST",
                path=self.path,
                headers={name.lower(): value for name, value in self.headers.items()},
                body=body,
                received_at=time.monotonic(),
                status=status,
            )
        )
        delay = recorded.delay + float(recording.get("delay", 0))
        if delay > 0 and recorded._closing.wait(delay):
            self.close_connection = True
            return  # the server is closing: drop the request as a dead server would
        if "raw" in recording:  # a body that is not JSON (a proxy's error page)
            payload, content_type = recording["raw"].encode(), "text/html; charset=utf-8"
        else:
            payload, content_type = json.dumps(recording["body"]).encode(), "application/json"
        try:
            self.send_response(status)
            self.send_header("content-type", content_type)
            self.send_header("content-length", str(len(payload)))
            headers = {
                "x-request-id": f"req_recorded_{len(recorded.exchanges)}",
                **recording.get("headers", {}),
            }
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (its timeout) before the answer came

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's signature
        pass
