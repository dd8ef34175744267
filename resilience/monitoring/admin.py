"""Admin for alert rules: operators edit thresholds; state and incidents are read only."""

from __future__ import annotations

from django.contrib import admin

from resilience.models import AlertIncident


class AlertIncidentInline(admin.TabularInline):
    model = AlertIncident
    extra = 0
    can_delete = False
    max_num = 0
    fields = readonly_fields = (
        "started_at",
        "resolved_at",
        "value",
        "peak_value",
        "firing_notified_at",
        "resolved_notified_at",
    )
    ordering = ("-started_at",)


class AlertRuleAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "metric",
        "comparison",
        "threshold",
        "for_seconds",
        "keep_firing_for_seconds",
        "enabled",
        "state",
        "last_value",
        "last_evaluated_at",
    )
    list_filter = ("enabled", "state", "metric")
    list_editable = ("enabled",)
    readonly_fields = ("state", "state_since", "last_breach_at", "last_value", "last_evaluated_at")
    fieldsets = (
        (None, {"fields": ("name", "enabled", "metric", "comparison", "threshold", "recovery_threshold")}),
        ("Timing", {"fields": ("for_seconds", "keep_firing_for_seconds", "window_minutes", "min_samples")}),
        ("State", {"fields": readonly_fields}),
    )
    inlines = [AlertIncidentInline]
