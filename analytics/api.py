"""Analytics JSON API v1: GET /api/v1/analytics/comprehensive."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.http import require_safe

from analytics.forms import ANALYTICS_PARAMS, AnalyticsForm
from analytics.report import cached_comprehensive_analytics
from calls.tenancy.decorators import api_organization_required
from calls.tenancy.http import OrgRequest, api_error
from resilience.cache import cached_view


@require_safe
@api_organization_required
@cached_view(preset="medium", tags=["org:{org}"], params=ANALYTICS_PARAMS)
def comprehensive(request: OrgRequest) -> JsonResponse:
    """?from=YYYY-MM-DD&to=YYYY-MM-DD (or ?days=7|30|90), &rep=<user id>, &outcome=, &sort=."""
    form = AnalyticsForm(request.GET, organization=request.organization)
    if not form.is_valid():
        return api_error(400, "invalid_parameters", "Some query parameters are not valid.", form.field_errors())
    return JsonResponse(cached_comprehensive_analytics(request.organization, form.params()))
