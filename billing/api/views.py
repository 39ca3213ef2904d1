"""REST API for billing (under /api/v1/billing/) and the account's usage (GET /api/v1/accounts/me/usage/).

Reads only, from billing/selectors.py as the billing page does. Changing plan stays on the web (Stripe
Checkout and the customer portal need a browser).
"""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone
from drf_spectacular.utils import extend_schema, extend_schema_field
from rest_framework import exceptions, generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from billing.choices import Feature, InvoiceStatus, PlanCode, SubscriptionStatus
from billing.models import Invoice
from billing.plans import plan_list
from billing.selectors import billing_overview, entitlement_summary, invoice_list, month_start, user_plan
from core.api import ETagMixin


class LimitOutput(serializers.Serializer):
    feature = serializers.ChoiceField(choices=Feature.choices)
    label = serializers.CharField()
    limit = serializers.IntegerField(allow_null=True, help_text="Empty: no limit.")


class BillingPlanOutput(serializers.Serializer):
    code = serializers.ChoiceField(choices=PlanCode.choices)
    name = serializers.CharField()
    tagline = serializers.CharField()
    monthly_price = serializers.DecimalField(max_digits=12, decimal_places=2, help_text="USD per month.")
    trial_days = serializers.IntegerField()
    ai_queries_included = serializers.IntegerField()
    ai_query_overage = serializers.DecimalField(
        max_digits=12, decimal_places=4, help_text="USD per AI query beyond those included."
    )
    limits = serializers.SerializerMethodField()

    @extend_schema_field(LimitOutput(many=True))
    def get_limits(self, plan) -> list[dict]:
        return LimitOutput(
            [{"feature": f.value, "label": f.label, "limit": plan.limit(f)} for f in Feature], many=True
        ).data


class UsageOutput(serializers.Serializer):
    feature = serializers.ChoiceField(choices=Feature.choices)
    label = serializers.CharField()
    limit = serializers.IntegerField(allow_null=True, help_text="Empty: no limit.")
    used = serializers.IntegerField(allow_null=True, help_text="Empty for rates (requests per minute).")
    remaining = serializers.IntegerField(allow_null=True)
    exhausted = serializers.BooleanField()


class SubscriptionOutput(serializers.Serializer):
    status = serializers.ChoiceField(choices=SubscriptionStatus.choices)
    status_label = serializers.CharField()
    plan = BillingPlanOutput(help_text="The plan whose limits apply now.")
    subscribed_plan = BillingPlanOutput(
        help_text="The plan subscribed to (differs while payment has failed)."
    )
    trial_end = serializers.DateTimeField(allow_null=True)
    trial_days_left = serializers.IntegerField(allow_null=True)
    current_period_end = serializers.DateTimeField(allow_null=True)
    cancel_at = serializers.DateTimeField(allow_null=True)
    payment_failed = serializers.BooleanField()
    grace_ends_at = serializers.DateTimeField(allow_null=True)
    downgraded = serializers.BooleanField(
        help_text="Payment failed past the grace period: Free's limits apply."
    )
    usage = UsageOutput(many=True)


class InvoiceOutput(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.CharField()
    status = serializers.ChoiceField(choices=InvoiceStatus.choices)
    currency = serializers.CharField()
    amount_due = serializers.DecimalField(max_digits=16, decimal_places=3)
    amount_paid = serializers.DecimalField(max_digits=16, decimal_places=3)
    total = serializers.DecimalField(max_digits=16, decimal_places=3)
    hosted_invoice_url = serializers.URLField(
        allow_null=True, help_text="Stripe's invoice page; null if none."
    )
    invoice_pdf = serializers.URLField(allow_null=True, help_text="The PDF; null if none.")
    period_start = serializers.DateTimeField(allow_null=True)
    period_end = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def to_representation(self, instance):
        data = super().to_representation(instance)
        for name in ("hosted_invoice_url", "invoice_pdf"):
            data[name] = data[name] or None  # Stripe gives none for some invoices: null, not an empty "URL"
        return data


class AiQueriesOutput(serializers.Serializer):
    included = serializers.IntegerField(allow_null=True, help_text="Per month on the plan; empty: no limit.")
    used = serializers.IntegerField()
    remaining = serializers.IntegerField(allow_null=True)


class AccountUsageOutput(serializers.Serializer):
    plan = serializers.ChoiceField(choices=PlanCode.choices)
    period_start = serializers.DateTimeField(help_text="Monthly counts start here (UTC).")
    period_end = serializers.DateTimeField(help_text="…and reset here.")
    ai_queries = AiQueriesOutput()
    features = UsageOutput(many=True)


def _next_month(start: datetime) -> datetime:
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


class BillingApi(ETagMixin, APIView):
    serializer_class = SubscriptionOutput

    @extend_schema(
        summary="Plan and subscription",
        description="The plan that applies now, the subscription's state and this month's usage per feature.",
        responses={200: SubscriptionOutput},
    )
    def get(self, request: Request) -> Response:
        overview = billing_overview(user=request.user)
        subscription = overview.subscription
        body = {
            "status": overview.status,
            "status_label": overview.status_label,
            "plan": overview.plan,
            "subscribed_plan": overview.subscribed_plan,
            "trial_end": subscription.trial_end if subscription else None,
            "trial_days_left": overview.trial_days_left,
            "current_period_end": subscription.current_period_end if subscription else None,
            "cancel_at": subscription.cancel_at if subscription else None,
            "payment_failed": overview.payment_failed,
            "grace_ends_at": overview.grace_ends_at,
            "downgraded": overview.downgraded,
            "usage": overview.usage,
        }
        return Response(SubscriptionOutput(body).data)


class PlanListApi(ETagMixin, APIView):
    serializer_class = BillingPlanOutput

    @extend_schema(summary="Plans on offer", responses={200: BillingPlanOutput(many=True)})
    def get(self, request: Request) -> Response:
        return Response(BillingPlanOutput(plan_list(), many=True).data)


class UsageApi(ETagMixin, APIView):
    serializer_class = UsageOutput

    @extend_schema(
        summary="Usage per feature",
        description="Each feature's limit on the plan that applies now and how much of it is used "
        "(this calendar month, UTC, for AI queries).",
        responses={200: UsageOutput(many=True)},
    )
    def get(self, request: Request) -> Response:
        return Response(UsageOutput(entitlement_summary(user=request.user), many=True).data)


class InvoiceListApi(generics.ListAPIView):
    serializer_class = InvoiceOutput
    ordering = ("-created_at", "-id")

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # the schema generator's call
            return Invoice.objects.none()
        return invoice_list(user=self.request.user).order_by("-created_at", "-id")

    @extend_schema(summary="List invoices (newest first)")
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)


class InvoiceDetailApi(ETagMixin, APIView):
    serializer_class = InvoiceOutput

    @extend_schema(summary="Get an invoice", responses={200: InvoiceOutput})
    def get(self, request: Request, invoice_id: int) -> Response:
        invoice = invoice_list(user=request.user).filter(pk=invoice_id).first()
        if invoice is None:
            raise exceptions.NotFound("No such invoice.")
        return Response(InvoiceOutput(invoice).data)


class AccountUsageApi(ETagMixin, APIView):
    serializer_class = AccountUsageOutput

    @extend_schema(
        summary="The account's usage this month",
        description="AI queries used and left this month, and every other feature's use against the plan.",
        responses={200: AccountUsageOutput},
    )
    def get(self, request: Request) -> Response:
        now = timezone.now()
        plan = user_plan(user=request.user, now=now)
        features = entitlement_summary(user=request.user, now=now)
        ai = next(row for row in features if row.feature == Feature.AI_QUERIES)
        start = month_start(now)
        body = {
            "plan": plan.code,
            "period_start": start,
            "period_end": _next_month(start),
            "ai_queries": {"included": ai.limit, "used": ai.used or 0, "remaining": ai.remaining},
            "features": features,
        }
        return Response(AccountUsageOutput(body).data)
