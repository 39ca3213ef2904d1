"""Orders over the REST API: list, place, read, cancel. Serializers in, services do the work."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.request import Request
from rest_framework.response import Response

from core.api import DB_ID_MAX, ETagMixin, StrictCharField, problem_responses
from trading import ledger
from trading.choices import OrderSide, OrderSource, OrderStatus, OrderType
from trading.connections.selectors import connection_get
from trading.orders.selectors import order_get, order_list
from trading.orders.services import order_cancel, order_place


class OrderOutput(serializers.Serializer):
    id = serializers.UUIDField()
    symbol = serializers.CharField(source="instrument.symbol")
    side = serializers.CharField()
    type = serializers.CharField()
    quantity = serializers.DecimalField(max_digits=28, decimal_places=12)
    price = serializers.DecimalField(max_digits=28, decimal_places=12, allow_null=True)
    stop_price = serializers.DecimalField(max_digits=28, decimal_places=12, allow_null=True)
    status = serializers.CharField()
    filled_quantity = serializers.DecimalField(max_digits=28, decimal_places=12)
    average_price = serializers.DecimalField(max_digits=28, decimal_places=12, allow_null=True)
    fees_paid = serializers.DecimalField(max_digits=32, decimal_places=12)
    source = serializers.CharField()
    connection = serializers.IntegerField(source="connection_id")
    portfolio = serializers.IntegerField(source="portfolio_id")
    created_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)


class OrderInput(serializers.Serializer):
    connection = serializers.IntegerField(min_value=1, max_value=DB_ID_MAX)
    portfolio = serializers.IntegerField(min_value=1, max_value=DB_ID_MAX)
    symbol = StrictCharField(max_length=32)
    side = serializers.ChoiceField(choices=OrderSide.choices)
    type = serializers.ChoiceField(choices=OrderType.choices)
    quantity = serializers.DecimalField(max_digits=28, decimal_places=12, min_value=0)
    price = serializers.DecimalField(max_digits=28, decimal_places=12, min_value=0, required=False, allow_null=True)
    stop_price = serializers.DecimalField(
        max_digits=28, decimal_places=12, min_value=0, required=False, allow_null=True
    )
    client_order_id = serializers.UUIDField(required=False, help_text="Send your own to make retries safe.")


class OrderFilter(serializers.Serializer):
    status = serializers.ChoiceField(choices=OrderStatus.choices, required=False)
    symbol = StrictCharField(required=False, max_length=32)
    side = serializers.ChoiceField(choices=OrderSide.choices, required=False)
    open = serializers.BooleanField(required=False, default=False)


class OrderListApi(GenericAPIView):
    serializer_class = OrderOutput
    ordering = ("-created_at",)

    def get_queryset(self):
        return order_list(user=self.request.user)

    @extend_schema(summary="Your orders, newest first", parameters=[OrderFilter], responses=OrderOutput(many=True))
    def get(self, request: Request) -> Response:
        filters = OrderFilter(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        orders = order_list(
            user=request.user, open_only=data["open"], status=data.get("status"), symbol=data.get("symbol"),
            side=data.get("side"),
        )
        page = self.paginate_queryset(orders)
        return self.get_paginated_response(OrderOutput(page, many=True).data)

    @extend_schema(
        summary="Place an order",
        request=OrderInput,
        responses={201: OrderOutput, **problem_responses(400, 404)},
        examples=[
            OpenApiExample(
                "Paper market buy",
                value={"connection": 1, "portfolio": 1, "symbol": "BTC/USDT", "side": "buy", "type": "market",
                       "quantity": "0.01"},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response:
        payload = OrderInput(data=request.data)
        payload.is_valid(raise_exception=True)
        data = payload.validated_data
        order = order_place(
            user=request.user,
            connection=connection_get(user=request.user, pk=data["connection"]),
            portfolio=ledger.portfolio_get(user=request.user, pk=data["portfolio"]),
            symbol=data["symbol"], side=data["side"], type=data["type"], quantity=data["quantity"],
            price=data.get("price"), stop_price=data.get("stop_price"), source=OrderSource.API,
            order_id=data.get("client_order_id"), request=request,
        )
        return Response(OrderOutput(order).data, status=status.HTTP_201_CREATED)


class OrderDetailApi(ETagMixin, GenericAPIView):
    serializer_class = OrderOutput

    @extend_schema(summary="One of your orders", responses=OrderOutput)
    def get(self, request: Request, pk) -> Response:
        return Response(OrderOutput(order_get(user=request.user, pk=pk)).data)


class OrderCancelApi(GenericAPIView):
    serializer_class = OrderOutput

    @extend_schema(summary="Cancel an open order", request=None, responses={200: OrderOutput, **problem_responses(400)})
    def post(self, request: Request, pk) -> Response:
        order = order_cancel(user=request.user, order=order_get(user=request.user, pk=pk),
                                      request=request)
        return Response(OrderOutput(order).data)
