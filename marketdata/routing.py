from django.urls import path

from marketdata.consumers import MarketHtmlConsumer, MarketJsonConsumer

websocket_urlpatterns = [
    path("ws/market/", MarketHtmlConsumer.as_asgi()),
    path("ws/market/json/", MarketJsonConsumer.as_asgi()),
]
