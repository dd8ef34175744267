"""Admin of the error tracker: groups are read-only records; staff with the
change permission resolve, ignore or reopen them (logged in the admin log)."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from resilience.models import ErrorGroup


def _mark(state: str, verb: str) -> object:
    @admin.action(description=f"{verb.capitalize()} selected error groups", permissions=["change"])
    def action(modeladmin: ErrorGroupAdmin, request: HttpRequest, queryset: QuerySet[ErrorGroup]) -> None:
        groups = list(queryset.exclude(state=state))
        changed = ErrorGroup.objects.filter(pk__in=[g.pk for g in groups]).mark(state)
        for group in groups:
            modeladmin.log_change(request, group, f"{verb} (was {group.state})")
        modeladmin.message_user(request, f"{changed} error group(s) {verb}.", messages.SUCCESS)

    action.__name__ = f"mark_{state}"
    return action


class ErrorGroupAdmin(admin.ModelAdmin):
    list_display = ["title", "kind", "state", "count", "organization_count", "first_seen", "last_seen"]
    list_filter = ["state", "kind"]
    search_fields = ["title", "culprit"]
    ordering = ["-last_seen"]
    actions = [_mark("resolved", "resolved"), _mark("ignored", "ignored"), _mark("unresolved", "reopened")]
    fields = ["title", "kind", "state", "culprit", "count", "organization_count", "first_seen", "last_seen"]
    fields += ["resolved_at", "fingerprint_parts", "samples_shown"]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest) -> QuerySet[ErrorGroup]:
        return super().get_queryset(request).with_organization_count()

    @admin.display(description="organizations", ordering="organization_count")
    def organization_count(self, group: ErrorGroup) -> int:
        return group.organization_count

    @admin.display(description="latest samples (scrubbed)")
    def samples_shown(self, group: ErrorGroup) -> str:
        return format_html_join(
            "", "<pre>{}</pre>", ((json.dumps(sample, indent=2, sort_keys=True),) for sample in group.samples)
        ) or format_html("<p>{}</p>", "none")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
