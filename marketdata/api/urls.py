from django.urls import path

from marketdata.api import views

urlpatterns = [
    path("instruments/", views.InstrumentListApi.as_view(), name="api_instruments"),
    path("instruments/<str:symbol>/", views.InstrumentDetailApi.as_view(), name="api_instrument"),
    path("instruments/<str:symbol>/quote/", views.InstrumentQuoteApi.as_view(), name="api_instrument_quote"),
    path("instruments/<str:symbol>/candles/", views.CandleListApi.as_view(), name="api_instrument_candles"),
    path("quotes/", views.QuoteListApi.as_view(), name="api_quotes"),
]
