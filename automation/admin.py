from django.contrib import admin

from automation.models import Rule, RuleRun


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    list_display = ["name", "user", "trigger_kind", "status", "consecutive_failures", "last_run_at"]
    list_filter = ["trigger_kind", "status"]
    readonly_fields = ["secret", "webhook_token"]


@admin.register(RuleRun)
class RuleRunAdmin(admin.ModelAdmin):
    list_display = ["rule", "user", "event_id", "status", "created_at"]
    list_filter = ["status"]
