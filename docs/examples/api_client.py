"""An example Nexus API client: open the socket, subscribe to orders and fills, place a paper market order
over REST, print the fill when it arrives on the socket (docs/api.md, "The socket").

    NEXUS_URL=https://nexus.example NEXUS_TOKEN=nexus_... python docs/examples/api_client.py [SYMBOL] [QUANTITY]

It creates nothing but the order: the account needs a paper exchange connection and a portfolio (both
made in the web app). The token needs the "read" and "trade" scopes. Requires aiohttp.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid

import aiohttp

TIMEOUT = aiohttp.ClientTimeout(total=30)


def rows(body: list | dict) -> list:
    """A list response: a plain list, or a page of them."""
    return body["results"] if isinstance(body, dict) else body


async def first_of(socket: aiohttp.ClientWebSocketResponse, kind: str) -> dict:
    """The next message of type `kind` (heartbeats and others are printed and skipped)."""
    async for frame in socket:
        if frame.type != aiohttp.WSMsgType.TEXT:
            raise RuntimeError(f"The socket closed: {socket.close_code}")
        message = json.loads(frame.data)
        if message["type"] == kind:
            return message
        if message["type"] == "error":
            raise RuntimeError(message["detail"])
    raise RuntimeError(f"The socket closed: {socket.close_code}")


async def main(url: str, token: str, symbol: str = "BTC/USDT", quantity: str = "0.001") -> dict:
    headers = {"Authorization": f"Token {token}"}
    async with aiohttp.ClientSession(base_url=url, headers=headers, timeout=TIMEOUT) as http:
        async with http.get("/api/v1/trading/connections/") as response:
            response.raise_for_status()
            connections = rows(await response.json())
        paper = next((c for c in connections if c["venue"] == "paper"), None)
        if paper is None:
            raise SystemExit("No paper connection: add one in the web app (Settings → Exchanges).")
        async with http.get("/api/v1/portfolios/") as response:
            response.raise_for_status()
            portfolios = rows(await response.json())
        if not portfolios:
            raise SystemExit("No portfolio: create one in the web app.")

        async with http.ws_connect("/ws/v1/", heartbeat=None) as socket:
            print(await first_of(socket, "welcome"))
            await socket.send_json({"op": "subscribe", "channels": ["orders", "fills"]})
            print(await first_of(socket, "subscribed"))
            body = {
                "connection": paper["id"],
                "portfolio": portfolios[0]["id"],
                "symbol": symbol,
                "side": "buy",
                "type": "market",
                "quantity": quantity,
            }
            # The Idempotency-Key makes a retry of this POST safe: it places one order.
            order_headers = {"Idempotency-Key": str(uuid.uuid4())}
            async with http.post("/api/v1/trading/orders/", json=body, headers=order_headers) as response:
                placed = await response.json(content_type=None)
                if response.status != 201:
                    raise SystemExit(f"The order was refused ({response.status}): {placed}")
            print("placed", placed["id"], placed["status"])
            while True:
                fill = await asyncio.wait_for(first_of(socket, "fill"), 30)
                if fill["order_id"] == placed["id"]:
                    print(json.dumps(fill))
                    return fill


if __name__ == "__main__":
    asyncio.run(main(os.environ["NEXUS_URL"], os.environ["NEXUS_TOKEN"], *sys.argv[1:]))
