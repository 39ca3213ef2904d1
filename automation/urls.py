from django.urls import path

from automation import views

app_name = "automation"

urlpatterns = [
    path("", views.rule_list_view, name="rule_list"),
    path("new/", views.rule_create_view, name="rule_create"),
    path("hooks/<str:token>/", views.webhook_view, name="webhook"),
    path("<int:rule_id>/", views.rule_detail_view, name="rule_detail"),
    path("<int:rule_id>/edit/", views.rule_edit_view, name="rule_edit"),
    path("<int:rule_id>/test/", views.rule_test_view, name="rule_test"),
    path("<int:rule_id>/pause/", views.rule_pause_view, name="rule_pause"),
    path("<int:rule_id>/resume/", views.rule_resume_view, name="rule_resume"),
    path("<int:rule_id>/delete/", views.rule_delete_view, name="rule_delete"),
    path("<int:rule_id>/runs/<int:run_id>/", views.run_detail_view, name="run_detail"),
]
