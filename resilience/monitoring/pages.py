"""Staff monitoring pages of the error tracker and the real-user timings.
Each page refreshes its table with htmx (`hx-trigger="every 10s"`, the same
URL answering with the table partial); resolving and ignoring error groups
happens in the admin, where it is logged. Error groups hold request samples,
so their pages need the permission to view them (`resilience.view_errorgroup`,
403 without it), not just staff status; the RUM page is for any staff."""

from __future__ import annotations

import json

from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from resilience.models import ErrorGroup
from resilience.monitoring import rum

PAGE_SIZE = 100
METRICS = list(rum.METRICS.items())


def _template(request: HttpRequest, name: str, partial: str) -> str:
    return f"{name}#{partial}" if getattr(request, "htmx", False) else name


# Staff sign-in first (a redirect to it), then the permission (a 403).
VIEW_ERRORS = permission_required("resilience.view_errorgroup", raise_exception=True)


@require_GET
@staff_member_required
@VIEW_ERRORS
@never_cache
@vary_on_headers("HX-Request")
def error_list(request: HttpRequest) -> HttpResponse:
    state = request.GET.get("state", "")
    groups = ErrorGroup.objects.with_organization_count().order_by("-last_seen", "-id")
    if state in ErrorGroup.State.values:
        groups = groups.filter(state=state)
    else:
        state = ""
    context = {"groups": groups[:PAGE_SIZE], "state": state, "states": ErrorGroup.State.choices}
    return render(request, _template(request, "resilience/errors.html", "table"), context)


@require_GET
@staff_member_required
@VIEW_ERRORS
@never_cache
def error_detail(request: HttpRequest, group_id: int) -> HttpResponse:
    group = get_object_or_404(ErrorGroup.objects.with_organization_count(), pk=group_id)
    samples = [json.dumps(sample, indent=2, sort_keys=True) for sample in group.samples]
    return render(request, "resilience/error_detail.html", {"group": group, "samples": samples})


@require_GET
@staff_member_required
@never_cache
@vary_on_headers("HX-Request")
def rum_page(request: HttpRequest) -> HttpResponse:
    window = request.GET.get("window", "hour")
    if window not in rum.WINDOWS:
        window = "hour"
    try:
        rows, unavailable = rum.p75_by_route(window), False
    except Exception:  # Redis away: the page says so instead of failing
        rows, unavailable = [], True
    table = [
        (row.route, [(name, unit, row.p75.get(name), row.samples.get(name, 0)) for name, (unit, _) in METRICS])
        for row in rows
    ]
    context = {"table": table, "window": window, "metrics": list(rum.METRICS), "unavailable": unavailable}
    return render(request, _template(request, "resilience/rum.html", "table"), context)
