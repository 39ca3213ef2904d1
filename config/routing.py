"""Every app's WebSocket routes, in one list."""

from core.routing import websocket_urlpatterns as core_routes

websocket_urlpatterns = [*core_routes]
