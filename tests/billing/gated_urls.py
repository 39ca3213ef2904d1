"""The project's URLs plus small views gated by billing's decorator, mixin and DRF classes, the way
trading, alerts and the AI app use them."""

from django.http import HttpResponse
from django.urls import path
from django.views import View
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.api import PlanAllows
from billing.decorators import EntitlementRequiredMixin, entitlement_required
from config.urls import urlpatterns as project_urlpatterns


@entitlement_required("bots")
def create_bot_view(request):
    return HttpResponse("bot created", status=201)


class CreateAlertView(EntitlementRequiredMixin, View):
    entitlement_feature = "alerts"

    def post(self, request):
        return HttpResponse("alert created", status=201)


class BotApiView(APIView):
    permission_classes = [PlanAllows]
    entitlement_feature = "bots"

    def get(self, request):
        return Response({"bots": []})

    def post(self, request):
        return Response({"created": True}, status=201)


urlpatterns = [
    path("test-gated/bots/", create_bot_view),
    path("test-gated/alerts/", CreateAlertView.as_view()),
    path("test-gated/api/bots/", BotApiView.as_view()),
    *project_urlpatterns,
]
