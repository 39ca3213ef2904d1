from django.urls import path

from trading.api import views

urlpatterns = [
    path("orders/", views.OrderListApi.as_view(), name="api_orders"),
    path("orders/<uuid:pk>/", views.OrderDetailApi.as_view(), name="api_order"),
    path("orders/<uuid:pk>/cancel/", views.OrderCancelApi.as_view(), name="api_order_cancel"),
]
