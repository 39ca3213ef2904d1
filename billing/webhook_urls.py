"""dj-stripe's webhook URL, served by billing's wrapper (see views.stripe_webhook_view).

Kept in the `djstripe` namespace under dj-stripe's name, so the dj-stripe admin and `stripe_listen`
build endpoint URLs that reach it.
"""

from django.urls import path

from billing import views

app_name = "djstripe"

urlpatterns = [
    path("webhook/<uuid:uuid>/", views.stripe_webhook_view, name="djstripe_webhook_by_uuid"),
]
