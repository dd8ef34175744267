from django.urls import path

from resilience import views
from resilience.monitoring import views as monitoring_views

app_name = "monitoring"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("health", views.health, name="health"),
    path("routes/", monitoring_views.routes, name="routes"),
    path("slow/", monitoring_views.slow, name="slow"),
    path("alerts/", monitoring_views.alerts, name="alerts"),
    path("business/", monitoring_views.business, name="business"),
]
