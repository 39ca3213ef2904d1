"""Binance at the HTTP boundary: a requests transport adapter serving recorded, real-shaped responses.

ccxt builds and signs real requests and parses these bodies exactly as it would Binance's; only the
socket is replaced. Bodies follow Binance's spot REST API documentation (exchangeInfo, account, order).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter

from core.rls import tenant

BINANCE_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
BINANCE_SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"

EXCHANGE_INFO = {
    "timezone": "UTC",
    "serverTime": 1678838400000,
    "rateLimits": [
        {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
        {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
    ],
    "exchangeFilters": [],
    "symbols": [
        {
            "symbol": "BTCUSDT",
            "status": "TRADING",
            "baseAsset": "BTC",
            "baseAssetPrecision": 8,
            "quoteAsset": "USDT",
            "quotePrecision": 8,
            "quoteAssetPrecision": 8,
            "baseCommissionPrecision": 8,
            "quoteCommissionPrecision": 8,
            "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
            "icebergAllowed": True,
            "ocoAllowed": True,
            "otoAllowed": True,
            "quoteOrderQtyMarketAllowed": True,
            "allowTrailingStop": True,
            "cancelReplaceAllowed": True,
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": True,
            "filters": [
                {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
                {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
                {"filterType": "ICEBERG_PARTS", "limit": 10},
                {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "83.46902194", "stepSize": "0.00000000"},
                {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000,
                 "minTrailingBelowDelta": 10, "maxTrailingBelowDelta": 2000},
                {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2",
                 "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
                {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
                 "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
                {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
                {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
            ],
            "permissions": [],
            "permissionSets": [["SPOT", "MARGIN"]],
            "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
            "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
        }
    ],
}

ACCOUNT = {
    "makerCommission": 10,
    "takerCommission": 10,
    "buyerCommission": 0,
    "sellerCommission": 0,
    "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000", "seller": "0.00000000"},
    "canTrade": True,
    "canWithdraw": True,
    "canDeposit": True,
    "brokered": False,
    "requireSelfTradePrevention": False,
    "preventSor": False,
    "updateTime": 1678838400000,
    "accountType": "SPOT",
    "balances": [
        {"asset": "BTC", "free": "0.25000000", "locked": "0.00000000"},
        {"asset": "USDT", "free": "5400.12000000", "locked": "120.00000000"},
    ],
    "permissions": ["SPOT"],
    "uid": 354937868,
}


def api_restrictions(*, withdrawals: bool = False) -> dict:
    return {
        "ipRestrict": True,
        "createTime": 1678838400000,
        "enableInternalTransfer": False,
        "enableFutures": False,
        "enablePortfolioMarginTrading": False,
        "enableVanillaOptions": False,
        "permitsUniversalTransfer": False,
        "enableReading": True,
        "enableSpotAndMarginTrading": True,
        "enableWithdrawals": withdrawals,
        "enableMargin": False,
    }


def order_body(*, client_order_id: str, status: str = "FILLED", side: str = "BUY", price: str = "0.00000000",
               qty: str = "0.01000000", executed: str | None = None, order_id: int = 28457, fills=None,
               order_type: str = "MARKET") -> dict:
    executed = executed if executed is not None else (qty if status == "FILLED" else "0.00000000")
    if fills is None:
        fills = (
            [{"price": "24150.00000000", "qty": executed, "commission": "0.24150000", "commissionAsset": "USDT",
              "tradeId": 3012345}]
            if status == "FILLED" else []
        )
    return {
        "symbol": "BTCUSDT",
        "orderId": order_id,
        "orderListId": -1,
        "clientOrderId": client_order_id,
        "transactTime": 1678838401234,
        "price": price,
        "origQty": qty,
        "executedQty": executed,
        "origQuoteOrderQty": "0.00000000",
        "cummulativeQuoteQty": "241.50000000" if status == "FILLED" else "0.00000000",
        "status": status,
        "timeInForce": "GTC",
        "type": order_type,
        "side": side,
        "workingTime": 1678838401234,
        "fills": fills,
        "selfTradePreventionMode": "EXPIRE_MAKER",
    }


def query_order_body(**kwargs) -> dict:
    body = order_body(**kwargs)
    body.pop("fills")
    body.pop("transactTime")
    body.update({"stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": 1678838401234,
                 "updateTime": 1678838401234, "isWorking": True})
    return body


@dataclass
class RecordedBinance(BaseAdapter):
    """Serves (method, path) -> handler(request) -> (status, body); raise requests exceptions to simulate."""

    restrictions: dict = field(default_factory=api_restrictions)
    handlers: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def send(self, request, **kwargs):
        url = urlsplit(request.url)
        params = parse_qs(url.query)
        if request.body:
            body = request.body.decode() if isinstance(request.body, bytes) else request.body
            params.update(parse_qs(body))
        flat = {k: v[0] for k, v in params.items()}
        self.requests.append((request.method, url.path, flat))
        handler = self.handlers.get((request.method, url.path))
        if handler is None:
            defaults = {
                ("GET", "/api/v3/exchangeInfo"): lambda p: (200, EXCHANGE_INFO),
                ("GET", "/api/v3/account"): lambda p: (200, ACCOUNT),
                ("GET", "/sapi/v1/account/apiRestrictions"): lambda p: (200, self.restrictions),
            }
            handler = defaults.get((request.method, url.path))
        if handler is None:
            status, payload = 404, {"code": -1, "msg": f"no recording for {request.method} {url.path}"}
        else:
            status, payload = handler(flat)
        response = requests.Response()
        response.status_code = status
        response.reason = {200: "OK", 400: "Bad Request", 418: "I'm a teapot", 429: "Too Many Requests",
                           503: "Service Unavailable"}.get(status, "")
        response._content = json.dumps(payload).encode()
        response.headers["Content-Type"] = "application/json"
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass

    def calls(self, method: str, path: str) -> list[dict]:
        return [params for m, p, params in self.requests if m == method and p == path]


@pytest.fixture
def recorded_binance(monkeypatch, instruments):
    transport = RecordedBinance()

    def session() -> requests.Session:
        s = requests.Session()
        s.mount("https://", transport)
        return s

    monkeypatch.setattr("trading.exchanges.ccxt_adapter.http_session", session)
    # ccxt's own rate limiter sleeps between calls; the recorded venue answers at once.
    monkeypatch.setattr("ccxt.Exchange.throttle", lambda self, cost=None: None)
    return transport


def binance_connection(user, label: str = "Binance"):
    from trading.connections.services import connection_create

    with tenant(user.pk):
        return connection_create(
            user=user, label=label, venue="binance", api_key=BINANCE_KEY, api_secret=BINANCE_SECRET
        )
