"""Analytics API v1 (mounted under /api/v1/)."""

from django.urls import path

from analytics import api

app_name = "analytics_api"

urlpatterns = [
    path("analytics/comprehensive", api.comprehensive, name="comprehensive"),
]
