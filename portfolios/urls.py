from django.urls import path

from portfolios import views

urlpatterns = [
    path("dashboard/", views.dashboard_view, name="dashboard"),
]
