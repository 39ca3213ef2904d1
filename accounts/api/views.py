from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.choices import TIME_ZONE_CHOICES, BaseCurrency
from accounts.services import user_update_profile


class MeApi(APIView):
    """The authenticated user's profile."""

    class OutputSerializer(serializers.Serializer):
        id = serializers.IntegerField()
        email = serializers.EmailField()
        display_name = serializers.CharField()
        time_zone = serializers.CharField()
        base_currency = serializers.CharField()

    class InputSerializer(serializers.Serializer):
        display_name = serializers.CharField(max_length=80, allow_blank=True, required=False)
        time_zone = serializers.ChoiceField(choices=TIME_ZONE_CHOICES, required=False)
        base_currency = serializers.ChoiceField(choices=BaseCurrency.choices, required=False)

    serializer_class = OutputSerializer

    def get(self, request: Request) -> Response:
        return Response(self.OutputSerializer(request.user).data)

    def patch(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = request.user
        fields = {
            "display_name": user.display_name,
            "time_zone": user.time_zone,
            "base_currency": user.base_currency,
            **data.validated_data,
        }
        user_update_profile(user=user, request=request, **fields)
        return Response(self.OutputSerializer(user).data)
