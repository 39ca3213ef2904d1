"""Real exchanges through ccxt (Binance by default; any ccxt exchange id works).

- Our order UUID travels as the client order id, so the venue itself refuses a second order for a retry.
- A timeout leaves the order's fate unknown: `OrderStatusUnknown` is raised and the caller fetches the
  order by client order id before it tries again (see services.order_submit).
- ccxt's own rate limiter stays on; 429/418/5xx answers feed the per-venue circuit breaker, and nothing is
  sent while it is open.
- Tests replace the HTTP session (`http_session`) with recorded venue responses: nothing above the wire is
  faked.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import ccxt
import requests

from trading import ledger
from trading.crypto import secret_decrypt
from trading.exchanges.base import (
    Balance,
    Credentials,
    ExchangeFill,
    ExchangeOrder,
    ExchangeRejected,
    ExchangeUnavailable,
    FeeSchedule,
    KeyPermissions,
    MarketRules,
    OrderRequest,
    OrderStatusUnknown,
    RestingMatch,
)
from trading.exchanges.breaker import breaker_health, breaker_record_failure

CCXT_STATUS = {"open": "open", "closed": "filled", "canceled": "cancelled", "expired": "expired", "rejected": "rejected"}
BREAKER_STATUSES = frozenset({418, 429, 500, 502, 503, 504})


def http_session() -> requests.Session:
    """The HTTP session ccxt sends through; the one seam tests replace (with recorded responses)."""
    return requests.Session()


def _decimal(value) -> Decimal:
    return Decimal("0") if value is None else Decimal(str(value))


def _precision_digits(value) -> int:
    """ccxt reports precision as a tick size (TICK_SIZE mode) or a digit count; we store digits."""
    if value is None:
        return 8
    tick = Decimal(str(value))
    if tick >= 1 and tick == tick.to_integral_value():
        return int(tick)
    return max(0, -tick.normalize().as_tuple().exponent)


class CcxtAdapter:
    needs_credentials = True
    counts_against_plan = True
    places_in_transaction = False
    can_batch = False

    def __init__(
        self,
        *,
        venue: str,
        api_key: str,
        secret: str,
        passphrase: str = "",
        sandbox: bool = False,
        timeout_ms: int = 10_000,
    ) -> None:
        if venue not in ccxt.exchanges:
            raise ExchangeRejected(f"{venue!r} is not an exchange ccxt supports.")
        self.venue = venue
        self.last_http_status: int | None = None
        session = http_session()
        session.hooks["response"].append(self._remember_status)
        exchange_class = getattr(ccxt, venue)
        self.exchange: ccxt.Exchange = exchange_class(
            {
                "apiKey": api_key,
                "secret": secret,
                "password": passphrase or None,
                "enableRateLimit": True,
                "timeout": timeout_ms,
                "session": session,
                "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
                            "fetchMargins": False},
            }
        )
        if sandbox:
            self.exchange.set_sandbox_mode(True)

    @classmethod
    def for_connection(cls, connection, *, portfolio=None, credentials: Credentials | None = None) -> CcxtAdapter:
        credentials = credentials or Credentials(
            api_key=secret_decrypt(connection.api_key_encrypted),
            secret=secret_decrypt(connection.api_secret_encrypted),
            passphrase=secret_decrypt(connection.passphrase_encrypted),
        )
        return cls(
            venue=connection.venue, api_key=credentials.api_key, secret=credentials.secret,
            passphrase=credentials.passphrase, sandbox=connection.sandbox,
        )

    @classmethod
    def trades_portfolio(cls, portfolio) -> bool:
        return not ledger.is_paper_portfolio(portfolio)

    # --- plumbing -------------------------------------------------------------------------------------
    def _call(self, method: str, *args, **kwargs):
        self.last_http_status = None
        health = breaker_health(venue=self.venue)
        if health.degraded:
            raise ExchangeUnavailable(
                f"{self.venue} is degraded (too many errors or rate limits); retrying in {health.retry_after_seconds}s."
            )
        try:
            return getattr(self.exchange, method)(*args, **kwargs)
        except ccxt.RequestTimeout as error:
            raise OrderStatusUnknown(f"{self.venue} did not answer in time.") from error
        except (ccxt.DDoSProtection, ccxt.RateLimitExceeded, ccxt.ExchangeNotAvailable) as error:
            breaker_record_failure(venue=self.venue, http_status=self._last_status())
            raise ExchangeUnavailable(f"{self.venue} is unavailable or rate limiting us: {error}") from error
        except ccxt.AuthenticationError as error:
            raise ExchangeRejected(f"{self.venue} refused the API key: {error}") from error
        except (ccxt.InsufficientFunds, ccxt.InvalidOrder, ccxt.OrderNotFound, ccxt.BadRequest) as error:
            raise ExchangeRejected(str(error)) from error
        except ccxt.NetworkError as error:
            breaker_record_failure(venue=self.venue, http_status=self._last_status())
            raise ExchangeUnavailable(f"{self.venue} could not be reached: {error}") from error
        except ccxt.OperationFailed as error:
            # ccxt's other transient failures, e.g. Binance's 503 {"code": -1008, "msg": "Server is currently
            # overloaded ..."} (found by the exchange fault drill, tests/faults): the venue failed, not the order.
            breaker_record_failure(venue=self.venue, http_status=self._last_status())
            raise ExchangeUnavailable(f"{self.venue} failed to handle the request: {error}") from error
        except ccxt.ExchangeError as error:
            if self._last_status() in BREAKER_STATUSES:
                breaker_record_failure(venue=self.venue, http_status=self._last_status())
                raise ExchangeUnavailable(f"{self.venue} answered with an error: {error}") from error
            raise ExchangeRejected(str(error)) from error

    def _remember_status(self, response: requests.Response, *args, **kwargs) -> None:
        self.last_http_status = response.status_code

    def _last_status(self) -> int | None:
        return self.last_http_status

    def _markets(self) -> dict:
        return self._call("load_markets")

    def _market(self, symbol: str) -> dict:
        markets = self._markets()
        if symbol not in markets:
            raise ExchangeRejected(f"{self.venue} has no market {symbol}.")
        return markets[symbol]

    def _order(self, raw: dict, *, client_order_id: str) -> ExchangeOrder:
        fee_currency_default = raw.get("symbol", "/").split("/")[-1]
        fills = tuple(
            ExchangeFill(
                fill_id=f"{self.venue}:{trade.get('id') or index}",
                quantity=_decimal(trade.get("amount")),
                price=_decimal(trade.get("price")),
                fee=_decimal((trade.get("fee") or {}).get("cost")),
                fee_currency=(trade.get("fee") or {}).get("currency") or fee_currency_default,
                executed_at=datetime.fromtimestamp((trade.get("timestamp") or 0) / 1000, tz=UTC)
                if trade.get("timestamp")
                else datetime.now(tz=UTC),
            )
            for index, trade in enumerate(raw.get("trades") or [])
        )
        status = CCXT_STATUS.get(raw.get("status") or "open", "open")
        filled = _decimal(raw.get("filled"))
        if status == "open" and filled > 0:
            status = "partially_filled"
        return ExchangeOrder(
            client_order_id=raw.get("clientOrderId") or client_order_id,
            exchange_order_id=str(raw.get("id") or ""),
            status=status,
            filled_quantity=filled,
            average_price=_decimal(raw["average"]) if raw.get("average") is not None else None,
            fills=fills,
        )

    # --- the interface ----------------------------------------------------------------------------------
    def validate_credentials(self) -> KeyPermissions:
        self._call("fetch_balance")
        if self.venue in {"binance", "binanceus"}:
            restrictions = self._call("sapi_get_account_apirestrictions")
            return KeyPermissions(
                can_trade=bool(restrictions.get("enableSpotAndMarginTrading")),
                can_withdraw=bool(restrictions.get("enableWithdrawals")),
                ip_restricted=bool(restrictions.get("ipRestrict")),
            )
        # Venues without a permissions endpoint: the trader confirms the key cannot withdraw (see forms).
        return KeyPermissions(can_trade=True, can_withdraw=False, ip_restricted=None)

    def balances(self) -> dict[str, Balance]:
        raw = self._call("fetch_balance")
        result = {}
        for currency, free in (raw.get("free") or {}).items():
            used = (raw.get("used") or {}).get(currency)
            if free or used:
                result[currency] = Balance(currency=currency, free=_decimal(free), used=_decimal(used))
        return result

    def spendable(self, *, currency: str) -> Decimal:
        balance = self.balances().get(currency)
        return balance.free if balance else Decimal("0")

    def sellable(self, *, instrument) -> Decimal:
        balance = self.balances().get(instrument.base)
        return balance.free if balance else Decimal("0")

    def buy_quantity_within(self, *, wanted: Decimal, price: Decimal, available: Decimal, precision: int) -> Decimal:
        """The venue's own price and fees decide what a market buy costs: the order's validation checks the
        balance, and the venue refuses what it cannot pay for."""
        return wanted

    def place_order(self, request: OrderRequest, *, quote=None, instrument=None) -> ExchangeOrder:
        self._market(request.symbol)
        params: dict = {"clientOrderId": request.client_order_id}
        ccxt_type = "limit" if request.type in {"limit", "stop_limit"} else "market"
        if request.type in {"stop_market", "stop_limit"}:
            params["stopLossPrice"] = float(request.stop_price)
        elif request.type == "take_profit":
            params["takeProfitPrice"] = float(request.stop_price)
        raw = self._call(
            "create_order",
            request.symbol,
            ccxt_type,
            request.side,
            float(request.quantity),
            float(request.price) if request.price is not None else None,
            params,
        )
        return self._order(raw, client_order_id=request.client_order_id)

    def resting_match(self, *, order, price: Decimal) -> RestingMatch | None:
        return None  # the venue matches its own orders; their fills arrive through fetch_order

    def cancel_order(self, *, client_order_id: str, exchange_order_id: str, symbol: str) -> ExchangeOrder:
        raw = self._call("cancel_order", exchange_order_id or None, symbol, self._by_client_id(client_order_id))
        return self._order(raw, client_order_id=client_order_id)

    def fetch_order(self, *, client_order_id: str, exchange_order_id: str, symbol: str) -> ExchangeOrder:
        raw = self._call("fetch_order", exchange_order_id or None, symbol, self._by_client_id(client_order_id))
        return self._order(raw, client_order_id=client_order_id)

    def open_orders(self, *, symbol: str | None = None) -> list[ExchangeOrder]:
        return [self._order(raw, client_order_id="") for raw in self._call("fetch_open_orders", symbol)]

    def fee_schedule(self, *, symbol: str = "") -> FeeSchedule:
        """The market's fees, or the venue's general spot schedule when no (known) symbol is given."""
        markets = self._markets()
        source = markets.get(symbol) if symbol else None
        if source is None:
            source = (self.exchange.fees or {}).get("trading") or {}
        return FeeSchedule(maker=_decimal(source.get("maker")), taker=_decimal(source.get("taker")))

    def market_rules(self, *, symbol: str) -> MarketRules:
        market = self._market(symbol)
        precision = market.get("precision") or {}
        limits = market.get("limits") or {}
        return MarketRules(
            symbol=symbol,
            price_precision=_precision_digits(precision.get("price")),
            quantity_precision=_precision_digits(precision.get("amount")),
            min_notional=_decimal((limits.get("cost") or {}).get("min")),
        )

    def _by_client_id(self, client_order_id: str) -> dict:
        if self.venue in {"binance", "binanceus"}:
            return {"origClientOrderId": client_order_id}
        return {"clientOrderId": client_order_id}
