"""Analytics API v1 (mounted under /api/v1/)."""

app_name = "analytics_api"

urlpatterns: list = []
