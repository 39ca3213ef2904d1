from django.urls import path

from core.consumers import UserEventsConsumer

websocket_urlpatterns = [path("ws/user/", UserEventsConsumer.as_asgi())]
