"""Every app's WebSocket routes, in one list."""

from core.routing import websocket_urlpatterns as core_routes
from marketdata.routing import websocket_urlpatterns as marketdata_routes

websocket_urlpatterns = [*core_routes]
# Public sockets (market data): routed without the session/auth middleware (config/asgi.py).
public_websocket_urlpatterns = [*marketdata_routes]
