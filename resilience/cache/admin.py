"""Cache control in the admin site: statistics, our namespace's key count and
Redis memory (any staff user), and three actions (invalidate a tag, flush our
namespace, warm now) that need the `resilience.control_cache` permission
(403 without it). Every action is a POST with CSRF, confirmed on a second
page, and recorded in the admin log. It works with tags, namespaces and the
warming registry's scopes and areas, never with an app's models.

There is no model behind it (nothing to store), so the pages are added to the
admin site's URLs and listed under "Resilience" on the admin index by wrapping
the site's get_urls/get_app_list; the wrappers compose with any others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_GET, require_POST

from resilience.cache.service import cache_service
from resilience.cache.tasks import warm_cache_task
from resilience.cache.warming import UnknownScope, plan, warmables
from resilience.redis_policy import eviction_problems

ACTIONS = {
    "invalidate_tag": "Invalidate a tag",
    "flush": "Flush the CallIQ cache namespace",
    "warm": "Warm now",
}
PERMISSION = "resilience.control_cache"
MAX_TAG_LENGTH = 200
MAX_SCOPE_LENGTH = 100


@require_GET
def cache_overview(request: HttpRequest) -> HttpResponse:
    service = cache_service()
    context = {
        **admin.site.each_context(request),
        "title": "Cache",
        "stats": service.stats(),
        "info": service.namespace_info(),
        "areas": sorted({w.area for w in warmables()}),
        "can_act": request.user.has_perm(PERMISSION),
        "prefix": service.prefix,
        "policy_problems": eviction_problems(),
    }
    return render(request, "admin/resilience/cache.html", context)


class BadAction(ValueError):
    pass


def parse_action(data: dict[str, Any]) -> tuple[str, dict[str, Any], str]:
    """(action, its parameters, a sentence describing it) or BadAction with a message for people."""
    action = data.get("action", "")
    if action not in ACTIONS:
        raise BadAction("Choose one of the cache actions.")
    if action == "invalidate_tag":
        tag = (data.get("tag") or "").strip()
        if not tag or len(tag) > MAX_TAG_LENGTH or any(c.isspace() for c in tag):
            raise BadAction(f"A tag is 1-{MAX_TAG_LENGTH} characters without spaces, e.g. org:12 or call:345.")
        return action, {"tag": tag}, f"Invalidate every cache entry tagged {tag!r}."
    if action == "warm":
        scope = (data.get("scope") or "").strip()
        area = (data.get("area") or "").strip()
        if len(scope) > MAX_SCOPE_LENGTH or any(c.isspace() for c in scope):
            raise BadAction(
                f"A scope is up to {MAX_SCOPE_LENGTH} characters without spaces, e.g. an organization slug."
            )
        if area and area not in {w.area for w in warmables()}:
            raise BadAction("Choose one of the registered areas.")
        try:
            next(plan(scope or None, only=[area] if area else None, max_users=1), None)
        except UnknownScope as exc:
            raise BadAction(str(exc)) from exc
        what = f"the {area} pages" if area else "every registered page"
        where = f"scope {scope!r}" if scope else "every scope"
        return action, {"scope": scope or None, "area": area or None}, f"Warm {what} for {where} (queued as a task)."
    return action, {}, "Drop every entry in the CallIQ cache namespace (other Redis data is untouched)."


@require_POST
def cache_action(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(PERMISSION):
        # Staff may look; acting on the cache of every tenant is a right of its own.
        raise PermissionDenied("Cache actions need the “Can invalidate, flush and warm the cache” permission.")
    try:
        action, params, description = parse_action(request.POST)
    except BadAction as exc:
        context = {**admin.site.each_context(request), "title": "Cache action refused", "error": str(exc)}
        return render(request, "admin/resilience/cache_confirm.html", context, status=400)
    if request.POST.get("confirm") != "yes":
        context = {
            **admin.site.each_context(request),
            "title": f"{ACTIONS[action]}?",
            "description": description,
            "fields": {k: v for k, v in request.POST.items() if k not in ("csrfmiddlewaretoken", "confirm")},
        }
        return render(request, "admin/resilience/cache_confirm.html", context)

    result = perform(action, params)
    LogEntry.objects.create(
        user_id=request.user.pk,
        content_type=None,
        object_id=None,
        object_repr=f"cache: {ACTIONS[action]}"[:200],
        action_flag=CHANGE,
        change_message=f"{description} {result}",
    )
    messages.success(request, f"{description} {result}")
    return HttpResponseRedirect(reverse("admin:resilience_cache"))


def perform(action: str, params: dict[str, Any]) -> str:
    service = cache_service()
    if action == "invalidate_tag":
        service.invalidate_tags(params["tag"], on_commit=False)
        return "Done."
    if action == "flush":
        return f"Done: {service.flush_namespace()} entries removed."
    warm_cache_task.delay_on_commit(scope=params["scope"], only=[params["area"]] if params["area"] else None)
    return "Queued."


def _wrap_get_urls(original: Callable[[], list[URLPattern]]) -> Callable[[], list[URLPattern]]:
    def get_urls() -> list[URLPattern]:
        ours = [
            path("resilience/cache/", admin.site.admin_view(cache_overview), name="resilience_cache"),
            path("resilience/cache/action/", admin.site.admin_view(cache_action), name="resilience_cache_action"),
        ]
        return ours + original()

    return get_urls


def _wrap_get_app_list(original: Callable[..., list[dict]]) -> Callable[..., list[dict]]:
    def get_app_list(request: HttpRequest, app_label: str | None = None) -> list[dict]:
        apps = original(request, app_label)
        if app_label not in (None, "resilience") or not request.user.is_staff:
            return apps
        entry = {
            "name": "Cache control",
            "object_name": "CacheControl",
            "admin_url": reverse("admin:resilience_cache"),
            "add_url": None,
            "view_only": True,
            "perms": {"view": True},
        }
        app = next((a for a in apps if a["app_label"] == "resilience"), None)
        if app is None:
            app = {
                "name": "Resilience",
                "app_label": "resilience",
                "app_url": reverse("admin:resilience_cache"),
                "has_module_perms": True,
                "models": [],
            }
            apps.append(app)
        app["models"].append(entry)
        return apps

    return get_app_list


admin.site.get_urls = _wrap_get_urls(admin.site.get_urls)
admin.site.get_app_list = _wrap_get_app_list(admin.site.get_app_list)
