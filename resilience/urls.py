from django.urls import path

from resilience import views
from resilience.monitoring import endpoints, pages
from resilience.monitoring import views as monitoring_views

app_name = "monitoring"

urlpatterns = [
    path("", views.overview, name="overview"),
    # The readiness probe under its older name; /readyz is the documented one.
    path("health", endpoints.readyz, name="health"),
    path("errors/", pages.error_list, name="errors"),
    path("errors/<int:group_id>/", pages.error_detail, name="error"),
    path("rum/", pages.rum_page, name="rum"),
    path("rum/beacon", endpoints.rum_beacon, name="rum-beacon"),
    path("csp-report", endpoints.csp_report, name="csp-report"),
    path("routes/", monitoring_views.routes, name="routes"),
    path("slow/", monitoring_views.slow, name="slow"),
    path("alerts/", monitoring_views.alerts, name="alerts"),
    path("business/", monitoring_views.business, name="business"),
]
