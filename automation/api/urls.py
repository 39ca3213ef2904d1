from django.urls import path

from automation.api import views

urlpatterns = [
    path("rules/", views.RuleListApi.as_view(), name="api-automation-rules"),
    path("rules/<int:rule_id>/", views.RuleDetailApi.as_view(), name="api-automation-rule"),
    path("rules/<int:rule_id>/pause/", views.RulePauseApi.as_view(), name="api-automation-rule-pause"),
    path("rules/<int:rule_id>/resume/", views.RuleResumeApi.as_view(), name="api-automation-rule-resume"),
    path("rules/<int:rule_id>/test/", views.RuleTestApi.as_view(), name="api-automation-rule-test"),
    path("rules/<int:rule_id>/runs/", views.RuleRunListApi.as_view(), name="api-automation-rule-runs"),
    path("runs/", views.RunListApi.as_view(), name="api-automation-runs"),
    path("runs/<int:run_id>/", views.RunDetailApi.as_view(), name="api-automation-run"),
]
