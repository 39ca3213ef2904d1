from django.urls import path

from billing import views

urlpatterns = [
    path("pricing/", views.pricing_view, name="pricing"),
    path("billing/", views.billing_view, name="billing"),
    path("billing/checkout/", views.checkout_view, name="billing_checkout"),
    path("billing/portal/", views.portal_view, name="billing_portal"),
    path("billing/return/", views.checkout_return_view, name="billing_checkout_return"),
]
