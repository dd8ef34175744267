"""Machine-readable monitoring routes: /metrics (mounted at the root by
calliq/urls.py) and the JSON API under /api/v1/monitoring/."""

from django.urls import path

from resilience.monitoring import views

app_name = "monitoring_api"

urlpatterns = [
    path("metrics", views.metrics_json, name="metrics"),
]
