"""Calls API v1 (mounted under /api/v1/)."""

from django.urls import path

from calls import api

app_name = "calls_api"

urlpatterns = [
    path("calls", api.call_list, name="list"),
    path("calls/<int:call_id>", api.call_detail, name="detail"),
]
