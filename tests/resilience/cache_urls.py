"""Test URLconf for the cache layer: small views decorated with @cached_view
that read real Call rows of the request's organization, served through the
project's real middleware, sign-in and Bearer tokens, next to every real URL
(base.html links to them)."""

from __future__ import annotations

from collections import Counter

from django.contrib import messages
from django.http import HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404
from django.template import engines
from django.urls import path
from django.views.decorators.cache import cache_page, never_cache
from django.views.decorators.http import require_GET, require_safe

from calliq.urls import urlpatterns as project_urlpatterns
from calls.models import Call
from calls.tenancy.decorators import api_organization_required, organization_required
from calls.tenancy.http import OrgRequest
from resilience.cache import cached_view

# How many times each view body ran: a HIT must not run it.
computations: Counter[str] = Counter()

PAGE = engines["django"].from_string(
    """{% extends "base.html" %}{% block content %}
{% partialdef rows inline %}<table class="table" id="calls">{% for call in calls %}
<tr><td>{{ call.title }}</td><td>{{ call.customer_company }}</td><td>{{ call.score }}</td></tr>{% endfor %}
</table>{% endpartialdef %}{% endblock %}"""
)
ROWS = engines["django"].from_string(
    """<table class="table" id="calls">{% for call in calls %}
<tr><td>{{ call.title }}</td><td>{{ call.customer_company }}</td><td>{{ call.score }}</td></tr>{% endfor %}</table>"""
)
DETAIL = engines["django"].from_string(
    """{% extends "base.html" %}{% block content %}
<h1>{{ call.title }}</h1><p>{{ call.customer_name }}</p>{% endblock %}"""
)


def first_page(request: OrgRequest) -> list[Call]:
    return list(Call.objects.for_org(request.organization).select_related("rep").order_by("-started_at", "-id")[:50])


@require_safe
@organization_required
@cached_view(preset="per_user", tags=["org:{org}"], params=("a", "b"))
def call_table(request: OrgRequest) -> HttpResponse:
    computations["table"] += 1
    template = ROWS if request.htmx and not request.htmx.history_restore_request else PAGE
    return HttpResponse(template.render({"calls": first_page(request)}, request))


@require_GET
@organization_required
@cached_view(preset="per_user", tags=["org:{org}", "call:{call_id}"])
def call_detail(request: OrgRequest, call_id: int) -> HttpResponse:
    computations["detail"] += 1
    call = get_object_or_404(Call.objects.for_org(request.organization), pk=call_id)
    return HttpResponse(DETAIL.render({"call": call}, request))


@require_GET
@api_organization_required
@cached_view(preset="short", tags=["org:{org}"])
def api_calls(request: OrgRequest) -> JsonResponse:
    computations["api"] += 1
    rows = [{"id": c.pk, "title": c.title, "company": c.customer_company} for c in first_page(request)]
    return JsonResponse({"calls": rows, "organization": request.organization.slug})


@require_GET
@organization_required
@cached_view(preset="short", tags=["org:{org}"])
def short_table(request: OrgRequest) -> HttpResponse:
    computations["short"] += 1
    return HttpResponse(ROWS.render({"calls": first_page(request)}, request))


@require_GET
@organization_required
@cached_view(preset="short")
def sets_cookie(request: OrgRequest) -> HttpResponse:
    computations["cookie"] += 1
    response = HttpResponse("with a cookie")
    response.set_cookie("seen", "1")
    return response


@require_GET
@organization_required
@cached_view(preset="short")
@never_cache
def private_page(request: OrgRequest) -> HttpResponse:
    computations["private"] += 1
    return HttpResponse("private")


@require_GET
@organization_required
@cached_view(preset="short")
def varies_on_everything(request: OrgRequest) -> HttpResponse:
    computations["vary"] += 1
    response = HttpResponse("vary star")
    response["Vary"] = "*"
    return response


@require_GET
@organization_required
def add_message(request: OrgRequest) -> HttpResponse:
    messages.success(request, "Saved your changes.")
    return HttpResponse("queued")


# The benchmark's comparisons: the same body without our cache, behind Django's cache_page, and a trivial view.
@require_GET
@organization_required
def call_table_uncached(request: OrgRequest) -> HttpResponse:
    computations["uncached"] += 1
    return HttpResponse(PAGE.render({"calls": first_page(request)}, request))


# Django's cache_page stores HttpResponse objects, which only pickle carries;
# the app's caches are msgpack, so the benchmark adds this pickle alias for
# the baseline alone (bench/cache_view.py).
BASELINE_CACHE = "cache_page_baseline"


@require_GET
@organization_required
@cache_page(60, cache=BASELINE_CACHE)
def call_table_cache_page(request: OrgRequest) -> HttpResponse:
    computations["cache_page"] += 1
    return HttpResponse(PAGE.render({"calls": first_page(request)}, request))


@require_GET
@organization_required
def trivial(request: OrgRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [
    path("cache-test/calls/", call_table, name="cache_test_calls"),
    path("cache-test/calls/<int:call_id>/", call_detail, name="cache_test_detail"),
    path("api/cache-test/calls", api_calls, name="cache_test_api"),
    path("cache-test/short/", short_table, name="cache_test_short"),
    path("cache-test/cookie/", sets_cookie, name="cache_test_cookie"),
    path("cache-test/private/", private_page, name="cache_test_private"),
    path("cache-test/vary/", varies_on_everything, name="cache_test_vary"),
    path("cache-test/message/", add_message, name="cache_test_message"),
    path("cache-test/uncached/", call_table_uncached, name="cache_test_uncached"),
    path("cache-test/cache-page/", call_table_cache_page, name="cache_test_cache_page"),
    path("cache-test/trivial/", trivial, name="cache_test_trivial"),
    *project_urlpatterns,
]
