"""A WebSocket client that stops reading is closed, not buffered without end, under daphne.

ASGI's `websocket.send` has no backpressure under daphne: a frame is handed to Twisted, which keeps what
the kernel will not take in memory for as long as the client stays connected. A program (or a tab) that
stops reading would grow the web process by every quote and event it is subscribed to. The sockets'
own bounded queues (marketdata.api_socket, the page consumers) only see how fast daphne accepts frames,
which is always at once.

Twisted does report a full transport, through its producer interface: once more than its buffer size
(64 KiB) is waiting for the kernel, it pauses the registered producer and resumes it when the buffer has
drained. `install()` gives each daphne WebSocket connection a producer that notes when it was paused;
a frame sent while the connection has been paused for longer than WEBSOCKET_SLOW_CLIENT_SECONDS closes
the socket with 4429 (docs/api.md, "The socket") instead of being buffered, and autobahn's close
handshake timeout drops the TCP connection if the client never reads the close either. A client that
is only briefly behind (a slow network) catches up within the grace and is never closed.

config.asgi calls `install()`; it changes nothing when the process is not daphne.
"""

from __future__ import annotations

import sys
import time

import structlog
from django.conf import settings

logger = structlog.get_logger(__name__)

CLOSE_SLOW_CONSUMER = 4429


class _Backpressure:
    """Twisted's IPushProducer for one connection: when the transport asked us to stop producing."""

    def __init__(self) -> None:
        self.paused_since: float | None = None

    def pauseProducing(self) -> None:  # noqa: N802 - Twisted's interface
        if self.paused_since is None:
            self.paused_since = time.monotonic()

    def resumeProducing(self) -> None:  # noqa: N802
        self.paused_since = None

    def stopProducing(self) -> None:  # noqa: N802
        self.paused_since = None


def slow_client_seconds() -> float:
    return float(settings.WEBSOCKET_SLOW_CLIENT_SECONDS)


def install() -> bool:
    """Make daphne's WebSocket connections close slow readers; True when this process is daphne."""
    if "daphne.ws_protocol" not in sys.modules:
        return False
    from daphne import ws_protocol

    if getattr(ws_protocol.WebSocketFactory.protocol, "closes_slow_readers", False):
        return True

    class SlowReaderClosingProtocol(ws_protocol.WebSocketProtocol):
        closes_slow_readers = True

        def onOpen(self):  # noqa: N802 - autobahn's interface
            self.backpressure = _Backpressure()
            if getattr(self.transport, "producer", None) is not None:
                # The HTTP channel that took the upgrade request is still registered (Twisted allows one).
                self.transport.unregisterProducer()
            self.registerProducer(self.backpressure, True)
            return super().onOpen()

        def serverSend(self, content, binary=False):  # noqa: N802 - daphne's interface
            backpressure = getattr(self, "backpressure", None)
            if backpressure is not None and backpressure.paused_since is not None:
                if self.state != self.STATE_OPEN:
                    return  # already closing: nothing more is queued for a client that does not read
                if time.monotonic() - backpressure.paused_since > slow_client_seconds():
                    logger.info("websocket.slow_client_closed", path=getattr(self, "path", b"").decode())
                    self.sendClose(code=CLOSE_SLOW_CONSUMER, reason="Too slow: the client stopped reading.")
                    return
            return super().serverSend(content, binary)

    ws_protocol.WebSocketFactory.protocol = SlowReaderClosingProtocol
    return True
