"""Every app's WebSocket routes, in one list."""

from django.urls import re_path

from core.consumers import RouteNotFoundConsumer
from core.routing import websocket_urlpatterns as core_routes
from marketdata.routing import websocket_urlpatterns as marketdata_routes

# Last, any other path: closed with 4404 rather than the router's "No route found" error (a 500).
websocket_urlpatterns = [*core_routes, re_path(r"", RouteNotFoundConsumer.as_asgi())]
# Public sockets (market data): routed without the session/auth middleware (config/asgi.py).
public_websocket_urlpatterns = [*marketdata_routes]
