"""REST API for alerts (under /api/v1/alerts/): list, create, get, change, delete, pause, resume, firings.

Every write goes through alerts/services.py, as the alert pages do; another user's alert is a 404.
"""

from __future__ import annotations

from django.http import Http404
from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from alerts.api.serializers import (
    AlertInput,
    AlertListFilter,
    AlertOutput,
    FiringOutput,
    alert_input_values,
    cooldown_of,
)
from alerts.models import Alert, AlertFiring
from alerts.selectors import alert_firing_list, alert_get, alert_list
from alerts.services import alert_create, alert_delete, alert_pause, alert_resume, alert_update
from core.api import ETagMixin
from core.errors import DomainError
from portfolios.selectors import portfolio_get

PRICE_ALERT = OpenApiExample(
    "Price alert",
    value={"kind": "price_above", "symbol": "BTC/USDT", "threshold": "70000", "repeat": False},
    request_only=True,
)


def _alert(request: Request, alert_id: int):
    try:
        return alert_get(user=request.user, alert_id=alert_id)
    except DomainError:
        raise exceptions.NotFound("No such alert.") from None


def _service_kwargs(request: Request, values: dict) -> dict:
    """AlertInput's values as the services take them (the portfolio object, the cooldown as a duration)."""
    kwargs = dict(values)
    portfolio_id = kwargs.pop("portfolio_id")
    kwargs["portfolio"] = None
    if portfolio_id is not None:
        try:
            kwargs["portfolio"] = portfolio_get(user=request.user, pk=portfolio_id)
        except Http404:  # in a body field it is an input error, not a missing resource
            raise exceptions.ValidationError({"portfolio_id": ["No such portfolio."]}) from None
    kwargs["cooldown"] = cooldown_of(kwargs)
    del kwargs["cooldown_minutes"]
    if kwargs["window_minutes"] is not None:
        kwargs["window_minutes"] = int(kwargs["window_minutes"])
    return kwargs


def _output(request: Request, alert_id: int) -> dict:
    return AlertOutput(_alert(request, alert_id)).data


class AlertListApi(generics.ListAPIView):
    serializer_class = AlertOutput
    ordering = ("-id",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator's call
            return Alert.objects.none()
        filters = AlertListFilter(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return alert_list(user=self.request.user, state=filters.validated_data.get("state"))

    @extend_schema(summary="List alerts", parameters=[AlertListFilter])
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(
        summary="Create an alert",
        description="Armed at once. Counts against the plan's alert limit (a 400 when it is reached). "
        "A price alert whose level the price is already past is refused.",
        request=AlertInput,
        responses={201: AlertOutput},
        examples=[PRICE_ALERT],
    )
    def post(self, request: Request) -> Response:
        data = AlertInput(data=request.data)
        data.is_valid(raise_exception=True)
        alert = alert_create(user=request.user, **_service_kwargs(request, data.validated_data))
        return Response(_output(request, alert.pk), status=status.HTTP_201_CREATED)


class AlertDetailApi(ETagMixin, APIView):
    serializer_class = AlertOutput

    @extend_schema(summary="Get an alert", responses={200: AlertOutput})
    def get(self, request: Request, alert_id: int) -> Response:
        return Response(AlertOutput(_alert(request, alert_id)).data)

    @extend_schema(
        summary="Change an alert",
        description="Only the fields sent change. An edited alert is armed again.",
        request=AlertInput(partial=True),
        responses={200: AlertOutput},
    )
    def patch(self, request: Request, alert_id: int) -> Response:
        alert = _alert(request, alert_id)
        data = AlertInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        values = {**alert_input_values(alert), **data.validated_data}
        alert_update(user=request.user, alert=alert, **_service_kwargs(request, values))
        return Response(_output(request, alert.pk))

    @extend_schema(summary="Delete an alert", responses={204: None})
    def delete(self, request: Request, alert_id: int) -> Response:
        alert_delete(user=request.user, alert=_alert(request, alert_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class AlertPauseApi(APIView):
    serializer_class = AlertOutput

    @extend_schema(summary="Pause an alert", request=None, responses={200: AlertOutput})
    def post(self, request: Request, alert_id: int) -> Response:
        alert = alert_pause(user=request.user, alert=_alert(request, alert_id))
        return Response(_output(request, alert.pk))


class AlertResumeApi(APIView):
    serializer_class = AlertOutput

    @extend_schema(
        summary="Resume an alert",
        description="Arms it again; a 400 when it has expired or the plan's alert limit is reached.",
        request=None,
        responses={200: AlertOutput},
    )
    def post(self, request: Request, alert_id: int) -> Response:
        alert = alert_resume(user=request.user, alert=_alert(request, alert_id))
        return Response(_output(request, alert.pk))


class FiringListApi(generics.ListAPIView):
    serializer_class = FiringOutput
    ordering = ("-id",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AlertFiring.objects.none()
        return alert_firing_list(user=self.request.user)

    @extend_schema(
        operation_id="alerts_firings_list_all", summary="List every alert's firings (newest first)"
    )
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class AlertFiringListApi(generics.ListAPIView):
    serializer_class = FiringOutput
    ordering = ("-id",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return AlertFiring.objects.none()
        return alert_firing_list(user=self.request.user, alert=_alert(self.request, self.kwargs["alert_id"]))

    @extend_schema(summary="List one alert's firings (newest first)")
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)
