"""REST API for automation (under /api/v1/automation/): rules CRUD, pause, resume, test-fire, runs.

Every write goes through automation/services.py, as the pages do; another user's rule or run is a 404.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiExample, extend_schema
from rest_framework import exceptions, generics, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from automation.api.serializers import RuleInput, RuleOutput, RunOutput, TestFireInput, rule_input_values
from automation.models import Rule, RuleRun
from automation.selectors import rule_get, rule_list, run_list
from automation.services import rule_create, rule_delete, rule_pause, rule_resume, rule_test_fire, rule_update
from core.errors import DomainError

WEBHOOK_RULE = OpenApiExample(
    "TradingView webhook placing paper orders",
    value={
        "name": "TradingView", "trigger_kind": "webhook",
        "trigger": {"template": {"ticker": "{{ticker}}", "action": "{{strategy.order.action}}",
                                 "contracts": "{{strategy.order.contracts}}"}},
        "actions": [{"kind": "place_order", "connection_id": 1, "portfolio_id": 1, "symbol": "{{ticker}}",
                     "side": "{{strategy.order.action}}", "order_type": "market", "quantity": "{{strategy.order.contracts}}"}],
        "daily_order_cap": "1000",
    },
    request_only=True,
)


def _rule(request: Request, rule_id: int) -> Rule:
    try:
        return rule_get(user=request.user, rule_id=rule_id)
    except DomainError:
        raise exceptions.NotFound("No such rule.") from None


class RuleListApi(generics.ListAPIView):
    serializer_class = RuleOutput
    ordering = ("-id",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Rule.objects.none()
        return rule_list(user=self.request.user)

    @extend_schema(summary="List automation rules")
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(summary="Create a rule", request=RuleInput, responses={201: RuleOutput}, examples=[WEBHOOK_RULE],
                   description="Counts against the plan's rule limit (and webhook-trigger limit for webhooks).")
    def post(self, request: Request) -> Response:
        data = RuleInput(data=request.data)
        data.is_valid(raise_exception=True)
        rule = rule_create(user=request.user, **data.validated_data)
        return Response(RuleOutput(rule).data, status=status.HTTP_201_CREATED)


class RuleDetailApi(APIView):
    serializer_class = RuleOutput

    @extend_schema(summary="Get a rule", responses={200: RuleOutput})
    def get(self, request: Request, rule_id: int) -> Response:
        return Response(RuleOutput(_rule(request, rule_id)).data)

    @extend_schema(summary="Change a rule", description="Only the fields sent change.",
                   request=RuleInput(partial=True), responses={200: RuleOutput})
    def patch(self, request: Request, rule_id: int) -> Response:
        rule = _rule(request, rule_id)
        data = RuleInput(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        rule = rule_update(user=request.user, rule=rule, **{**rule_input_values(rule), **data.validated_data})
        return Response(RuleOutput(rule).data)

    @extend_schema(summary="Delete a rule", responses={204: None})
    def delete(self, request: Request, rule_id: int) -> Response:
        rule_delete(user=request.user, rule=_rule(request, rule_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class RulePauseApi(APIView):
    serializer_class = RuleOutput

    @extend_schema(summary="Pause a rule", request=None, responses={200: RuleOutput})
    def post(self, request: Request, rule_id: int) -> Response:
        return Response(RuleOutput(rule_pause(user=request.user, rule=_rule(request, rule_id), reason="Paused by you.")).data)


class RuleResumeApi(APIView):
    serializer_class = RuleOutput

    @extend_schema(summary="Resume a rule", request=None, responses={200: RuleOutput})
    def post(self, request: Request, rule_id: int) -> Response:
        return Response(RuleOutput(rule_resume(user=request.user, rule=_rule(request, rule_id))).data)


class RuleTestApi(APIView):
    serializer_class = RunOutput

    @extend_schema(summary="Test-fire a rule (dry run)", request=TestFireInput, responses={201: RunOutput},
                   description="Runs the rule now with a sample (or the given) event as a dry run: conditions are "
                   "checked and recorded, nothing is done.")
    def post(self, request: Request, rule_id: int) -> Response:
        rule = _rule(request, rule_id)
        data = TestFireInput(data=request.data)
        data.is_valid(raise_exception=True)
        run = rule_test_fire(user=request.user, rule=rule, event=data.validated_data["event"])
        return Response(RunOutput(run).data, status=status.HTTP_201_CREATED)


class RuleRunListApi(generics.ListAPIView):
    serializer_class = RunOutput
    ordering = ("-id",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RuleRun.objects.none()
        return run_list(user=self.request.user, rule=_rule(self.request, self.kwargs["rule_id"])).prefetch_related("results")

    @extend_schema(summary="List a rule's runs (newest first)")
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class RunListApi(generics.ListAPIView):
    serializer_class = RunOutput
    ordering = ("-id",)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return RuleRun.objects.none()
        return run_list(user=self.request.user).prefetch_related("results")

    @extend_schema(operation_id="automation_runs_list_all", summary="List every rule's runs (newest first)")
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class RunDetailApi(APIView):
    serializer_class = RunOutput

    @extend_schema(summary="Get a run: its event, conditions with their values, and action results",
                   responses={200: RunOutput})
    def get(self, request: Request, run_id: int) -> Response:
        run = run_list(user=request.user).prefetch_related("results").filter(pk=run_id).first()
        if run is None:
            raise exceptions.NotFound("No such run.")
        return Response(RunOutput(run).data)
