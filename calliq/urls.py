"""Root URLconf: each app owns its pages; the JSON API lives under /api/v1/."""

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView

from calliq.openapi import openapi_json
from calls.tenancy import views as tenancy_views
from resilience.monitoring import endpoints as probes
from resilience.monitoring import views as monitoring_views

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="calls:list", permanent=False), name="home"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/tokens/", tenancy_views.token_list, name="tokens"),
    path("accounts/tokens/<int:token_id>/revoke/", tenancy_views.token_revoke, name="token_revoke"),
    path("organization/switch/", tenancy_views.switch_organization, name="switch_organization"),
    path("calls/", include("calls.urls")),
    path("settings/webhooks/", include("calls.webhooks.urls")),
    path("analytics/", include("analytics.urls")),
    path("", include("calls.billing.urls")),  # /webhooks/paddle and /billing/usage/
    path("monitoring/", include("resilience.urls")),
    path("api/v1/openapi.json", openapi_json, name="openapi"),
    path("metrics", monitoring_views.metrics, name="metrics"),
    path("api/v1/monitoring/", include("resilience.monitoring.urls")),
    path("api/v1/", include("calls.api_urls")),
    path("api/v1/", include("analytics.api_urls")),
    path("admin/", admin.site.urls),
    # Probes for load balancers and Kubernetes (README "Health probes").
    path("healthz", probes.healthz, name="healthz"),
    path("readyz", probes.readyz, name="readyz"),
]

handler400 = "calliq.views.bad_request"
handler403 = "calliq.views.permission_denied"
handler404 = "calliq.views.page_not_found"
handler500 = "calliq.views.server_error"
