"""The analytics pages: the team dashboard and the staff business metrics."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_safe
from django.views.decorators.vary import vary_on_headers

from analytics.business import business_metrics
from analytics.charts import dashboard_charts
from analytics.forms import ANALYTICS_PARAMS, RANGE_CHOICES, AnalyticsForm
from analytics.report import cached_comprehensive_analytics
from calls.models import NAMED_OUTCOMES
from calls.tenancy.decorators import organization_required
from calls.tenancy.http import AuthedRequest, OrgRequest
from resilience.cache import cached_view


@require_safe
@organization_required
@vary_on_headers("HX-Request")
# The page per user (navigation, CSRF tokens); its data is shared by the organization.
@cached_view(preset="per_user", tags=["org:{org}"], params=ANALYTICS_PARAMS)
def dashboard(request: OrgRequest) -> HttpResponse:
    form = AnalyticsForm(request.GET, organization=request.organization)
    data = charts = None
    status = 400
    if form.is_valid():
        data = cached_comprehensive_analytics(request.organization, form.params())
        charts = dashboard_charts(data)
        status = 200
    # htmx swaps only the body; a history restore (or no JavaScript) gets the whole page.
    partial = request.htmx and not request.htmx.history_restore_request
    template = "analytics/dashboard.html#body" if partial else "analytics/dashboard.html"
    context = {
        "form": form,
        "data": data,
        "charts": charts,
        "outcomes": NAMED_OUTCOMES,
        "ranges": RANGE_CHOICES,
        "time_zone": settings.TIME_ZONE,
    }
    return render(request, template, context, status=status)


@require_GET
def business(request: AuthedRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect_to_login(request.get_full_path())
    if not request.user.is_staff:
        raise PermissionDenied("Business metrics are for CallIQ staff.")
    return render(request, "analytics/business.html", {"metrics": business_metrics(), "time_zone": settings.TIME_ZONE})
