"""The signed-in user's profile over the API (/api/v1/accounts/me/)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.choices import TIME_ZONE_CHOICES, BaseCurrency
from accounts.services import user_update_profile
from core.api import ETagMixin, StrictCharField, problem_responses


class MeOutput(serializers.Serializer):
    id = serializers.IntegerField()
    email = serializers.EmailField()
    display_name = serializers.CharField()
    time_zone = serializers.ChoiceField(choices=TIME_ZONE_CHOICES)
    base_currency = serializers.ChoiceField(choices=BaseCurrency.choices)


class MeUpdateInput(serializers.Serializer):
    display_name = StrictCharField(max_length=80, allow_blank=True, required=False)
    time_zone = serializers.ChoiceField(choices=TIME_ZONE_CHOICES, required=False)
    base_currency = serializers.ChoiceField(choices=BaseCurrency.choices, required=False)


class MeApi(ETagMixin, APIView):
    """The authenticated user's profile."""

    serializer_class = MeOutput

    @extend_schema(summary="Your profile", responses=MeOutput)
    def get(self, request: Request) -> Response:
        return Response(MeOutput(request.user).data)

    @extend_schema(
        summary="Change your display name, time zone or base currency",
        request=MeUpdateInput,
        responses={200: MeOutput, **problem_responses(400)},
        examples=[OpenApiExample("Time zone", value={"time_zone": "Europe/Berlin"}, request_only=True)],
    )
    def patch(self, request: Request) -> Response:
        data = MeUpdateInput(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user
        fields = {
            "display_name": user.display_name,
            "time_zone": user.time_zone,
            "base_currency": user.base_currency,
            **data.validated_data,
        }
        user_update_profile(user=user, request=request, **fields)
        return Response(MeOutput(user).data)
