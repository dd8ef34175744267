"""Calls API v1 (mounted under /api/v1/)."""

from django.urls import path

from calls import api, search_views

app_name = "calls_api"

urlpatterns = [
    path("calls", api.call_list, name="list"),
    path("calls/search", search_views.search_api, name="search"),
    path("calls/<int:call_id>", api.call_detail, name="detail"),
]
