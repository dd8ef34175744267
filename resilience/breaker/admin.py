"""Admin for circuit breakers: the policy list doubles as the breakers page
(live state read from Redis on every view), per-breaker force open / force
closed / reset actions behind a confirmation page (POST, CSRF, admin log), and
the transition history (read-only)."""

from __future__ import annotations

import datetime as dt

from django.contrib import admin, messages
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join

from resilience.breaker import breaker
from resilience.breaker.core import ACTION_LABELS
from resilience.breaker.policy import forget_policies
from resilience.breaker.store import Snapshot
from resilience.models import BreakerEvent, BreakerPolicy

ACTION_HELP = {
    "open": "Every call to this service is refused (callers get their fallback) until someone resets the breaker.",
    "closed": "The breaker is disabled: every call goes through, whatever fails, until someone resets it.",
    "reset": "Back to normal: CLOSED, failure counts and the error-rate window cleared, any forced state removed.",
}


ACTION_VERBS = {"open": "force open", "closed": "force closed", "reset": "reset"}


def _clock(ms: int, now_ms: int | None = None) -> str:
    """A breaker time to the second, UTC, with how far away it is."""
    if not ms:
        return "-"
    shown = dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC).strftime("%m-%d %H:%M:%S")
    if now_ms is None:
        return shown
    delta = round((ms - now_ms) / 1000)
    return f"{shown} (in {delta} s)" if delta >= 0 else f"{shown} ({-delta} s ago)"


class BreakerChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        for policy in self.result_list:
            # One read-only Lua call per breaker: the page shows the state as it is now.
            policy.snapshot = breaker(policy.service).snapshot()


class BreakerPolicyAdmin(admin.ModelAdmin):
    list_display = [
        "service",
        "state",
        "consecutive_failures",
        "error_rate",
        "next_trial_at",
        "counters",
        "actions_links",
    ]
    list_display_links = ["service"]
    readonly_fields = ["service", "forced_state", "updated_at", "live_state", "history"]
    change_list_template = "admin/resilience/breakerpolicy/change_list.html"

    class Media:
        css = {"all": ["css/breakers.css"]}
        js = ["js/breakers.js"]

    fieldsets = [
        (None, {"fields": ["service", "live_state", "forced_state"]}),
        ("Opening", {"fields": ["failure_threshold", "error_rate_threshold", "window_seconds", "minimum_calls"]}),
        (
            "Recovery",
            {"fields": ["open_seconds", "open_backoff_multiplier", "max_open_seconds", "half_open_max_calls"]},
        ),
        ("Calls", {"fields": ["call_timeout_seconds", "slow_call_seconds"]}),
        (
            "Which errors count",
            {"fields": ["count_timeouts", "count_connection_errors", "count_server_errors", "count_rate_limits"]},
        ),
        ("Transition history", {"fields": ["history", "updated_at"]}),
    ]

    def save_model(self, request: HttpRequest, obj: BreakerPolicy, form: object, change: bool) -> None:
        super().save_model(request, obj, form, change)
        forget_policies(obj.service)  # this process at once; the others within BREAKER_POLICY_TTL

    def get_changelist(self, request: HttpRequest, **kwargs: object) -> type[ChangeList]:
        return BreakerChangeList

    def has_add_permission(self, request: HttpRequest) -> bool:
        # One policy per service, created by the data migration.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: BreakerPolicy | None = None) -> bool:
        return False

    # -- live columns -----------------------------------------------------------
    def _snap(self, obj: BreakerPolicy) -> Snapshot:
        snap = getattr(obj, "snapshot", None)
        if snap is None:
            snap = obj.snapshot = breaker(obj.service).snapshot()
        return snap

    @admin.display(description="state (times UTC)")
    def state(self, obj: BreakerPolicy) -> str:
        snap = self._snap(obj)
        css = {"closed": "completed", "half_open": "analyzing", "open": "failed"}.get(snap.state, "uploaded")
        label = snap.shown_state.replace("_", " ").upper()
        where = "" if snap.shared else " (local: Redis unreachable)"
        opened = f"opened {_clock(snap.opened_at_ms)}" if snap.state != "closed" and snap.opened_at_ms else ""
        return format_html(
            '<span class="badge badge-{}">{}</span>{}<div class="breaker-opened">{}</div>', css, label, where, opened
        )

    @admin.display(description="failures in a row")
    def consecutive_failures(self, obj: BreakerPolicy) -> int:
        return self._snap(obj).consecutive_failures

    @admin.display(description="error rate (window)")
    def error_rate(self, obj: BreakerPolicy) -> str:
        snap = self._snap(obj)
        if snap.error_rate is None:
            return f"no calls ({obj.window_seconds} s)"
        return f"{snap.error_rate:.0%} of {snap.window_calls} ({obj.window_seconds} s)"

    @admin.display(description="next trial at")
    def next_trial_at(self, obj: BreakerPolicy) -> str:
        snap = self._snap(obj)
        if snap.forced == "open":
            return "none until reset"
        return _clock(snap.next_trial_ms, snap.now_ms) if snap.state == "open" and not snap.forced else "-"

    @admin.display(description="calls / failed / refused / moves")
    def counters(self, obj: BreakerPolicy) -> str:
        s = self._snap(obj)
        return f"{s.calls} / {s.failures} / {s.rejections} / {s.transitions}"

    @admin.display(description="actions")
    def actions_links(self, obj: BreakerPolicy) -> str:
        return format_html_join(
            " ",
            '<a class="button breaker-action" href="{}">{}</a>',
            (
                (reverse("admin:resilience_breakerpolicy_action", args=[obj.pk, action]), label)
                for action, label in [("open", "Force open"), ("closed", "Force closed"), ("reset", "Reset")]
            ),
        )

    @admin.display(description="live state")
    def live_state(self, obj: BreakerPolicy) -> str:
        if obj.pk is None:
            return "-"
        snap = self._snap(obj)
        return format_html(
            "{} · {} failures in a row · error rate {} · next trial {} (UTC)<br><br>{}",
            self.state(obj),
            snap.consecutive_failures,
            self.error_rate(obj),
            self.next_trial_at(obj),
            self.actions_links(obj),
        )

    @admin.display(description="last transitions")
    def history(self, obj: BreakerPolicy) -> str:
        if obj.pk is None:
            return "-"
        events = BreakerEvent.objects.for_service(obj.service)[:20]
        if not events:
            return "none yet"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((e.at.strftime("%Y-%m-%d %H:%M:%S"), e.from_state, e.to_state, e.reason) for e in events),
        )
        link = reverse("admin:resilience_breakerevent_changelist") + f"?service={obj.service}"
        return format_html(
            '<table><tr><th>at (UTC)</th><th>from</th><th>to</th><th>reason</th></tr>{}</table><a href="{}">All</a>',
            rows,
            link,
        )

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict | None = None
    ) -> HttpResponse:
        obj = self.get_object(request, object_id)
        if obj is not None:
            breaker(obj.service).sync_events()
        return super().change_view(request, object_id, form_url, extra_context)

    # -- force open / force closed / reset ------------------------------------------
    def get_urls(self) -> list[URLPattern]:
        custom = [
            path(
                "<int:object_id>/action/<str:action>/",
                self.admin_site.admin_view(self.breaker_action_view),
                name="resilience_breakerpolicy_action",
            )
        ]
        return custom + super().get_urls()

    def breaker_action_view(self, request: HttpRequest, object_id: int, action: str) -> HttpResponse:
        if action not in ACTION_LABELS:
            raise Http404("No such breaker action.")
        obj = self.get_object(request, str(object_id))
        if obj is None:
            raise Http404("No such breaker.")
        if not self.has_change_permission(request, obj):
            raise PermissionDenied
        changelist = reverse("admin:resilience_breakerpolicy_changelist")
        label, verb = ACTION_LABELS[action], ACTION_VERBS[action]
        if request.method == "POST":
            snapshot = breaker(obj.service).force(action, actor=request.user.get_username())
            self.log_change(request, obj, f"Breaker {label} (now {snapshot.shown_state}).")
            self.message_user(request, f"Breaker {obj.service}: {label}.", messages.SUCCESS)
            return HttpResponseRedirect(changelist)
        context = {
            **self.admin_site.each_context(request),
            "title": f"{verb.capitalize()} the {obj.service} breaker?",
            "opts": self.opts,
            "object": obj,
            "action": action,
            "verb": verb,
            "help": ACTION_HELP[action],
            "snapshot": self._snap(obj),
            "changelist_url": changelist,
        }
        return TemplateResponse(request, "admin/resilience/breakerpolicy/confirm_action.html", context)

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "events_url": reverse("admin:resilience_breakerevent_changelist")}
        return super().changelist_view(request, extra_context)


class BreakerEventAdmin(admin.ModelAdmin):
    list_display = ["at", "service", "from_state", "to_state", "reason", "consecutive_failures", "window", "shared"]
    list_filter = ["service", "to_state", "shared"]
    date_hierarchy = "at"

    @admin.display(description="window failures / calls")
    def window(self, obj: BreakerEvent) -> str:
        return f"{obj.window_failures} / {obj.window_calls}"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: BreakerEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: BreakerEvent | None = None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        # Copy transitions the database missed (a writer that died, a rolled back transaction).
        for service in BreakerPolicy.objects.values_list("service", flat=True):
            breaker(service).sync_events()
        return super().changelist_view(request, extra_context)
