from django.urls import path

from alerts.api import views

urlpatterns = [
    path("", views.AlertListApi.as_view(), name="api-alerts"),
    path("firings/", views.FiringListApi.as_view(), name="api-alert-firings-all"),
    path("<int:alert_id>/", views.AlertDetailApi.as_view(), name="api-alert"),
    path("<int:alert_id>/pause/", views.AlertPauseApi.as_view(), name="api-alert-pause"),
    path("<int:alert_id>/resume/", views.AlertResumeApi.as_view(), name="api-alert-resume"),
    path("<int:alert_id>/firings/", views.AlertFiringListApi.as_view(), name="api-alert-firings"),
]
