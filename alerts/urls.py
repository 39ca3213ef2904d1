from django.urls import path

from alerts import views

urlpatterns = [
    path("alerts/", views.alert_list_view, name="alert_list"),
    path("alerts/<int:alert_id>/", views.alert_detail_view, name="alert_detail"),
    path("alerts/<int:alert_id>/pause/", views.alert_pause_view, name="alert_pause"),
    path("alerts/<int:alert_id>/resume/", views.alert_resume_view, name="alert_resume"),
    path("alerts/<int:alert_id>/delete/", views.alert_delete_view, name="alert_delete"),
]
