from django.urls import path

from billing.api import views

urlpatterns = [
    path("", views.BillingApi.as_view(), name="api-billing"),
    path("plans/", views.PlanListApi.as_view(), name="api-billing-plans"),
    path("usage/", views.UsageApi.as_view(), name="api-billing-usage"),
    path("invoices/", views.InvoiceListApi.as_view(), name="api-billing-invoices"),
    path("invoices/<int:invoice_id>/", views.InvoiceDetailApi.as_view(), name="api-billing-invoice"),
]

# Mounted at /api/v1/accounts/me/usage/ (config/urls.py).
account_usage_urlpatterns = [
    path("", views.AccountUsageApi.as_view(), name="api-account-usage"),
]
