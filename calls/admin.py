"""Admin for calls and tenancy. API tokens are read-only here: a token is
issued by its owner (who sees the raw value once) and the admin can only
revoke it, one way; the database refuses anything else (migration 0004)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from calls.models import Call, CallAnalysis, Transcript
from calls.tenancy.models import ApiToken, Membership, Organization
from calls.webhooks.events import emit_outcome_changes


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "created_at"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organization", "role", "created_at"]
    list_filter = ["role", "organization"]
    search_fields = ["user__username", "user__email", "organization__name"]
    autocomplete_fields = ["user", "organization"]
    list_select_related = ["user", "organization"]


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    list_display = [
        "name",
        "prefix",
        "user",
        "organization",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    list_filter = ["organization", "scope"]
    search_fields = ["name", "prefix", "user__username"]
    list_select_related = ["user", "organization"]
    # Never the hash (nor, of course, the raw token: it is not stored).
    fields = [
        "name",
        "prefix",
        "user",
        "organization",
        "scope",
        "created_at",
        "expires_at",
        "last_used_at",
        "revoked_at",
    ]
    readonly_fields = fields
    actions = ["revoke_tokens"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Tokens are issued by their owner on the API tokens page, which shows the raw value once.
        return False

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        # Read-only: re-pointing a token at another user or un-revoking it is an escalation.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        # Revoke instead: the row stays as the record of the token.
        return False

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("calls.revoke_apitoken")

    @admin.action(description="Revoke selected tokens", permissions=["revoke"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = queryset.revoke()
        messages.success(request, f"Revoked {revoked} token{'s' if revoked != 1 else ''}.")


class TranscriptInline(admin.StackedInline):
    model = Transcript
    extra = 0
    readonly_fields = ["created_at"]


class CallAnalysisInline(admin.StackedInline):
    model = CallAnalysis
    extra = 0
    readonly_fields = ["created_at"]


@admin.register(Call)
class CallAdmin(admin.ModelAdmin):
    list_display = [
        "title",
        "organization",
        "rep",
        "customer_company",
        "started_at",
        "duration_seconds",
        "status",
        "outcome",
        "score",
    ]
    list_filter = ["status", "outcome", "direction", "organization"]
    search_fields = ["title", "customer_name", "customer_company"]
    date_hierarchy = "started_at"
    autocomplete_fields = ["organization", "rep"]
    list_select_related = ["organization", "rep"]
    # A million rows: no COUNT(*) of the whole table for the change list's paginator.
    show_full_result_count = False
    inlines = [TranscriptInline, CallAnalysisInline]

    def save_model(self, request: HttpRequest, obj: Call, form: Any, change: bool) -> None:
        if change and "outcome" in form.changed_data:
            # Before the save, while the row still holds the previous outcome (the admin's view is atomic).
            emit_outcome_changes(obj.organization, Call.objects.filter(pk=obj.pk), obj.outcome)
        super().save_model(request, obj, form, change)


@admin.register(CallAnalysis)
class CallAnalysisAdmin(admin.ModelAdmin):
    list_display = ["call", "score", "sentiment", "talk_ratio", "model", "created_at"]
    list_filter = ["model"]
    raw_id_fields = ["call"]
    show_full_result_count = False


@admin.register(Transcript)
class TranscriptAdmin(admin.ModelAdmin):
    list_display = ["call", "language", "provider_id", "created_at"]
    raw_id_fields = ["call"]
    show_full_result_count = False
