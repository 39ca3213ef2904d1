from django.urls import path

from marketdata import views

urlpatterns = [
    path("markets", views.market_list, name="markets"),
    path("markets/<str:slug>", views.market_detail, name="market_detail"),
]
