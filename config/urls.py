from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts import views as accounts_views
from billing.api.urls import account_usage_urlpatterns
from core import views as core_views
from newsletter.webhook_urls import urlpatterns as newsletter_webhook_urlpatterns
from portfolios.api.urls import watchlist_urlpatterns

# The API first: Django tries patterns in order, and a request that reached the API went through every
# page module mounted at "" before (a dozen resolvers and their failed matches, on every API request).
api_v1_urlpatterns = [
    path("accounts/me/usage/", include(account_usage_urlpatterns)),
    path("accounts/", include("accounts.api.urls")),
    path("portfolios/", include("portfolios.api.urls")),
    path("trading/", include("trading.api.urls")),
    path("markets/", include("marketdata.api.urls")),
    path("watchlists/", include(watchlist_urlpatterns)),
    path("alerts/", include("alerts.api.urls")),
    path("automation/", include("automation.api.urls")),
    path("research/", include("research.api.urls")),
    path("notifications/", include("core.notifications_api")),
    path("billing/", include("billing.api.urls")),
    path("companion/", include("bot.api.urls")),
    path("newsletter/", include("newsletter.api.urls")),
]

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="dashboard", permanent=False)),
    path("healthz", core_views.healthz, name="healthz"),
    path("readyz", core_views.readyz, name="readyz"),
    path("api/v1/", include(api_v1_urlpatterns)),
    path("", include("django_prometheus.urls")),
    path("admin/", admin.site.urls),
    path("accounts/login/", accounts_views.LoginView.as_view(), name="account_login"),
    path("accounts/", include("allauth.urls")),
    path("settings/", include("accounts.urls")),
    path("", include("portfolios.urls")),
    path("", include("core.urls")),
    path("", include("alerts.urls")),
    path("", include("marketdata.urls")),
    path("trading/", include("trading.urls")),
    path("automation/", include("automation.urls")),
    path("", include("billing.urls")),
    path("", include("bot.urls")),
    path("research/", include("research.urls")),
    path("stripe/", include("billing.webhook_urls")),
    path("newsletter/", include("newsletter.urls")),
    *newsletter_webhook_urlpatterns,
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
]

# /api/... paths that match no route answer in problem+json, like the API's own 404s.
handler404 = "core.api.not_found_handler"
