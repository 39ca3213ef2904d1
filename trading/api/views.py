"""The trading API: orders, exchange connections, bots, their plans and blocked executions, regime readings.

Thin views over the same services and selectors as the pages (trading/views.py): serializers check shapes,
the services decide, and a DomainError they raise becomes a 400 with the field it names. Every object is
looked up through a selector for request.user, so another trader's object is a 404.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import ETagMixin, OrderingFilter
from core.errors import DomainError
from marketdata.selectors import canonical_symbol, instrument_get
from trading import ledger
from trading.api.serializers import (
    BlockedExecutionFilter,
    BlockedExecutionOutput,
    BotFilter,
    BotInput,
    BotOutput,
    BotUpdateInput,
    ConnectionInput,
    ConnectionOutput,
    FillOutput,
    OrderCheckOutput,
    OrderFilter,
    OrderInput,
    OrderOutput,
    OrderPlaceInput,
    PlanFilter,
    PlanOutput,
    RegimeFilter,
    RegimeReadingOutput,
    StrategyOutput,
)
from trading.bots.selectors import bot_get, bot_list
from trading.bots.services import bot_create, bot_delete, bot_set_status, bot_update
from trading.choices import BotStatus, OrderSource
from trading.connections.selectors import connection_get, connection_list
from trading.connections.services import connection_create, connection_delete
from trading.decisions.selectors import regime_history, regime_latest, regime_latest_map
from trading.decisions.strategies import STRATEGIES
from trading.fanout.selectors import blocked_execution_get, blocked_execution_list, plan_list
from trading.orders.selectors import fill_list, order_get, order_list
from trading.orders.services import order_cancel, order_place
from trading.orders.validation import order_validate

ORDERS = ["Orders"]
CONNECTIONS = ["Exchange connections"]
BOTS = ["Bots"]
REGIMES = ["Regime readings"]

PAIR = OpenApiParameter(
    "symbol", OpenApiTypes.STR, OpenApiParameter.PATH, description='The pair with a dash, e.g. "BTC-USDT".'
)
ORDER_EXAMPLE = OpenApiExample(
    "A paper limit buy",
    value={
        "connection": 1,
        "portfolio": 1,
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "quantity": "0.01",
        "price": "19000",
    },
    request_only=True,
)
BOT_EXAMPLE = OpenApiExample(
    "Buy 100 USDT of BTC every hour",
    value={
        "name": "Hourly DCA",
        "connection": 1,
        "portfolio": 1,
        "symbol": "BTC/USDT",
        "strategy": "dca",
        "params": {"every": 60},
        "timeframe": "1m",
        "allocation": "100",
        "max_position": "0.5",
        "daily_loss_limit": "50",
    },
    request_only=True,
)


class ApiView(GenericAPIView):
    """Filters go through the selectors (a query serializer each), so of the default filter backends only the
    ordering one stays: it hands the view's `ordering` to the cursor pagination."""

    filter_backends = [OrderingFilter]


def _filters(serializer_class, request: Request) -> dict:
    filters = serializer_class(data=request.query_params)
    filters.is_valid(raise_exception=True)
    return {key: value for key, value in filters.validated_data.items() if value not in (None, "")}


def _paginated(view: ApiView, rows, serializer_class) -> Response:
    page = view.paginate_queryset(rows)
    if page is None:
        return Response(serializer_class(rows, many=True).data)
    return view.get_paginated_response(serializer_class(page, many=True).data)


def _own_account(request: Request, data: dict) -> tuple:
    """The trader's own connection and portfolio named in a body; anyone else's is a field error (400)."""
    try:
        connection = connection_get(user=request.user, pk=data["connection"])
    except Http404:
        raise DomainError("Choose one of your own exchange connections.", field="connection") from None
    try:
        portfolio = ledger.portfolio_get(user=request.user, pk=data["portfolio"])
    except Http404:
        raise DomainError("Choose one of your own portfolios.", field="portfolio") from None
    return connection, portfolio


def _order_values(request: Request, data: dict) -> dict:
    """The ticket's values, as the trade page passes them to order_validate / order_place."""
    connection, portfolio = _own_account(request, data)
    return {
        "user": request.user,
        "connection": connection,
        "portfolio": portfolio,
        "symbol": data["symbol"],
        "side": data["side"],
        "type": data["type"],
        "quantity": data["quantity"],
        "price": data.get("price"),
        "stop_price": data.get("stop_price"),
    }


# --- orders ---------------------------------------------------------------------------------------------------


class OrderListApi(ApiView):
    serializer_class = OrderOutput
    ordering = ("-created_at", "-id")

    @extend_schema(
        tags=ORDERS, summary="List your orders", parameters=[OrderFilter], responses=OrderOutput(many=True)
    )
    def get(self, request: Request) -> Response:
        data = _filters(OrderFilter, request)
        open_only = data.pop("open", False)
        if "symbol" in data:
            data["symbol"] = canonical_symbol(data["symbol"])
        return _paginated(self, order_list(user=request.user, open_only=open_only, **data), OrderOutput)

    @extend_schema(
        tags=ORDERS,
        summary="Place an order",
        description="Checks the order as the trade page does (precision, minimum notional, balance) and "
        "places it. Paper orders are matched at once: a market order comes back filled.",
        request=OrderPlaceInput,
        responses={201: OrderOutput},
        examples=[ORDER_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        payload = OrderPlaceInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        order = order_place(
            **_order_values(request, data),
            source=OrderSource.API,
            order_id=data.get("client_order_id"),
            playbook_tag=data.get("playbook_tag", ""),
            request=request,
        )
        return Response(OrderOutput(order).data, status=status.HTTP_201_CREATED)


class OrderCheckApi(ApiView):
    serializer_class = OrderCheckOutput

    @extend_schema(
        tags=ORDERS,
        summary="Check an order without placing it",
        description="The trade ticket's pre-submit check: the same validation as placing; nothing is written.",
        request=OrderInput,
        responses=OrderCheckOutput,
        examples=[ORDER_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        payload = OrderInput(data=request.data)
        payload.is_valid(raise_exception=True)
        check = order_validate(**_order_values(request, payload.validated_data))
        return Response(OrderCheckOutput(check).data)


class OrderDetailApi(ETagMixin, ApiView):
    serializer_class = OrderOutput

    @extend_schema(tags=ORDERS, summary="Get an order")
    def get(self, request: Request, pk) -> Response:
        return Response(OrderOutput(order_get(user=request.user, pk=pk)).data)


class OrderCancelApi(ApiView):
    serializer_class = OrderOutput

    @extend_schema(tags=ORDERS, summary="Cancel an open order", request=None, responses=OrderOutput)
    def post(self, request: Request, pk) -> Response:
        order = order_cancel(user=request.user, order=order_get(user=request.user, pk=pk), request=request)
        return Response(OrderOutput(order).data)


class OrderFillsApi(ETagMixin, ApiView):
    serializer_class = FillOutput
    pagination_class = None

    @extend_schema(tags=ORDERS, summary="List an order's fills", responses=FillOutput(many=True))
    def get(self, request: Request, pk) -> Response:
        order = order_get(user=request.user, pk=pk)
        return Response(FillOutput(fill_list(user=request.user, order=order), many=True).data)


# --- exchange connections -------------------------------------------------------------------------------------


class ConnectionListApi(ETagMixin, ApiView):
    serializer_class = ConnectionOutput
    pagination_class = None

    @extend_schema(
        tags=CONNECTIONS,
        summary="List your exchange connections",
        description="Keys are never shown again: only their last four characters.",
        responses=ConnectionOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        return Response(ConnectionOutput(connection_list(user=request.user), many=True).data)

    @extend_schema(
        tags=CONNECTIONS,
        summary="Connect an exchange account",
        description="Validates the key with the venue, refuses keys that can withdraw or cannot trade, and "
        "stores the key, secret and passphrase encrypted.",
        request=ConnectionInput,
        responses={201: ConnectionOutput},
        examples=[
            OpenApiExample(
                "The built-in paper exchange", value={"label": "Paper", "venue": "paper"}, request_only=True
            )
        ],
    )
    def post(self, request: Request) -> Response:
        payload = ConnectionInput(data=request.data)
        payload.is_valid(raise_exception=True)
        connection = connection_create(user=request.user, **payload.validated_data, request=request)
        return Response(ConnectionOutput(connection).data, status=status.HTTP_201_CREATED)


class ConnectionDetailApi(ETagMixin, ApiView):
    serializer_class = ConnectionOutput

    @extend_schema(tags=CONNECTIONS, summary="Get an exchange connection")
    def get(self, request: Request, pk: int) -> Response:
        return Response(ConnectionOutput(connection_get(user=request.user, pk=pk)).data)

    @extend_schema(
        tags=CONNECTIONS,
        summary="Remove an exchange connection",
        description="Its keys are erased. A connection with order history stays listed as disabled so that "
        "history survives; one with bots or open orders is refused.",
        responses={204: None},
    )
    def delete(self, request: Request, pk: int) -> Response:
        connection_delete(
            user=request.user, connection=connection_get(user=request.user, pk=pk), request=request
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


# --- bots -----------------------------------------------------------------------------------------------------


class StrategyListApi(ETagMixin, ApiView):
    serializer_class = StrategyOutput
    pagination_class = None

    @extend_schema(tags=BOTS, summary="List the strategies bots can run", responses=StrategyOutput(many=True))
    def get(self, request: Request) -> Response:
        strategies = [
            {
                "key": s.key,
                "label": s.label,
                "description": s.description,
                "params": s.params,
                "buy_regimes": sorted(s.buy_regimes),
            }
            for s in STRATEGIES.values()
        ]
        return Response(StrategyOutput(strategies, many=True).data)


class BotListApi(ApiView):
    serializer_class = BotOutput
    ordering = ("created_at", "id")

    @extend_schema(
        tags=BOTS, summary="List your bots", parameters=[BotFilter], responses=BotOutput(many=True)
    )
    def get(self, request: Request) -> Response:
        data = _filters(BotFilter, request)
        if "symbol" in data:
            data["symbol"] = canonical_symbol(data["symbol"])
        return _paginated(self, bot_list(user=request.user, **data).order_by("created_at", "id"), BotOutput)

    @extend_schema(
        tags=BOTS,
        summary="Create a bot (it starts running)",
        request=BotInput,
        responses={201: BotOutput},
        examples=[BOT_EXAMPLE],
    )
    def post(self, request: Request) -> Response:
        payload = BotInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        connection, portfolio = _own_account(request, data)
        bot = bot_create(
            user=request.user,
            name=data["name"],
            portfolio=portfolio,
            connection=connection,
            symbol=data["symbol"],
            strategy=data["strategy"],
            params=data["params"],
            timeframe=data["timeframe"],
            allocation=data["allocation"],
            max_position=data["max_position"],
            daily_loss_limit=data["daily_loss_limit"],
            request=request,
        )
        return Response(BotOutput(bot).data, status=status.HTTP_201_CREATED)


class BotDetailApi(ETagMixin, ApiView):
    serializer_class = BotOutput

    @extend_schema(tags=BOTS, summary="Get a bot")
    def get(self, request: Request, pk: int) -> Response:
        return Response(BotOutput(bot_get(user=request.user, pk=pk)).data)

    @extend_schema(
        tags=BOTS,
        summary="Change a bot's name, parameters, timeframe or limits",
        description="Send only what changes. The pair, strategy, connection and portfolio stay.",
        request=BotUpdateInput,
        responses=BotOutput,
        examples=[OpenApiExample("Smaller buys", value={"allocation": "50"}, request_only=True)],
    )
    def patch(self, request: Request, pk: int) -> Response:
        bot = bot_get(user=request.user, pk=pk)
        payload = BotUpdateInput(data=request.data)
        payload.is_valid(raise_exception=True)
        bot = bot_update(user=request.user, bot=bot, **payload.validated_data, request=request)
        return Response(BotOutput(bot).data)

    @extend_schema(
        tags=BOTS,
        summary="Delete a bot",
        description="Its orders stay in your order history.",
        responses={204: None},
    )
    def delete(self, request: Request, pk: int) -> Response:
        bot_delete(user=request.user, bot=bot_get(user=request.user, pk=pk), request=request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class _BotStatusApi(ApiView):
    serializer_class = BotOutput
    target_status: str

    def post(self, request: Request, pk: int) -> Response:
        bot = bot_get(user=request.user, pk=pk)
        bot = bot_set_status(user=request.user, bot=bot, status=self.target_status, request=request)
        return Response(BotOutput(bot).data)


class BotPauseApi(_BotStatusApi):
    target_status = BotStatus.PAUSED

    @extend_schema(tags=BOTS, summary="Pause a bot", request=None, responses=BotOutput)
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)


class BotResumeApi(_BotStatusApi):
    target_status = BotStatus.ENABLED

    @extend_schema(
        tags=BOTS,
        summary="Resume a paused bot",
        description="Refused when the connection's taker fee is above what bots may pay.",
        request=None,
        responses=BotOutput,
    )
    def post(self, request: Request, pk: int) -> Response:
        return super().post(request, pk)


class BotOrdersApi(ApiView):
    serializer_class = OrderOutput
    ordering = ("-created_at", "-id")

    @extend_schema(tags=BOTS, summary="List a bot's orders", responses=OrderOutput(many=True))
    def get(self, request: Request, pk: int) -> Response:
        bot = bot_get(user=request.user, pk=pk)
        return _paginated(self, order_list(user=request.user, bot=bot), OrderOutput)


class BotPlansApi(ApiView):
    serializer_class = PlanOutput
    ordering = ("-created_at", "-id")

    @extend_schema(
        tags=BOTS,
        summary="List a bot's execution plans",
        parameters=[PlanFilter],
        responses=PlanOutput(many=True),
    )
    def get(self, request: Request, pk: int) -> Response:
        bot = bot_get(user=request.user, pk=pk)
        plans = plan_list(user=request.user, bot=bot)
        data = _filters(PlanFilter, request)
        if "status" in data:
            plans = plans.filter(status=data["status"])
        return _paginated(self, plans, PlanOutput)


class BotBlockedExecutionsApi(ApiView):
    serializer_class = BlockedExecutionOutput
    ordering = ("-created_at", "-id")

    @extend_schema(
        tags=BOTS, summary="List a bot's blocked executions", responses=BlockedExecutionOutput(many=True)
    )
    def get(self, request: Request, pk: int) -> Response:
        bot = bot_get(user=request.user, pk=pk)
        return _paginated(self, blocked_execution_list(user=request.user, bot=bot), BlockedExecutionOutput)


class BlockedExecutionListApi(ApiView):
    serializer_class = BlockedExecutionOutput
    ordering = ("-created_at", "-id")

    @extend_schema(
        tags=BOTS,
        summary="List executions the regime gatekeeper blocked",
        parameters=[BlockedExecutionFilter],
        responses=BlockedExecutionOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        data = _filters(BlockedExecutionFilter, request)
        bot = None
        if "bot" in data:
            try:
                bot = bot_get(user=request.user, pk=data["bot"])
            except Http404:
                raise ValidationError({"bot": ["No such bot."]}) from None
        return _paginated(self, blocked_execution_list(user=request.user, bot=bot), BlockedExecutionOutput)


class BlockedExecutionDetailApi(ETagMixin, ApiView):
    serializer_class = BlockedExecutionOutput

    @extend_schema(tags=BOTS, summary="Get a blocked execution")
    def get(self, request: Request, pk: int) -> Response:
        return Response(BlockedExecutionOutput(blocked_execution_get(user=request.user, pk=pk)).data)


# --- regime readings (market-wide) ----------------------------------------------------------------------------


def _pair(symbol: str):
    try:
        return instrument_get(symbol=symbol)
    except DomainError as error:
        raise Http404(str(error)) from error


class RegimeLatestListApi(ETagMixin, ApiView):
    serializer_class = RegimeReadingOutput
    pagination_class = None

    @extend_schema(
        tags=REGIMES,
        summary="The latest regime reading of every pair",
        responses=RegimeReadingOutput(many=True),
    )
    def get(self, request: Request) -> Response:
        readings = sorted(regime_latest_map().values(), key=lambda reading: reading.instrument.symbol)
        return Response(RegimeReadingOutput(readings, many=True).data)


class RegimeLatestApi(ETagMixin, ApiView):
    serializer_class = RegimeReadingOutput

    @extend_schema(
        tags=REGIMES,
        summary="A pair's latest regime reading",
        parameters=[PAIR],
        description="404 when the pair is not listed or has not been classified yet.",
    )
    def get(self, request: Request, symbol: str) -> Response:
        reading = regime_latest(instrument=_pair(symbol))
        if reading is None:
            raise Http404("This pair has no regime reading yet.")
        return Response(RegimeReadingOutput(reading).data)


class RegimeHistoryApi(ApiView):
    serializer_class = RegimeReadingOutput
    ordering = ("-as_of", "-id")

    @extend_schema(
        tags=REGIMES,
        summary="A pair's regime readings, newest first",
        parameters=[PAIR, RegimeFilter],
        responses=RegimeReadingOutput(many=True),
    )
    def get(self, request: Request, symbol: str) -> Response:
        instrument = _pair(symbol)
        data = _filters(RegimeFilter, request)
        return _paginated(self, regime_history(instrument=instrument, **data), RegimeReadingOutput)
