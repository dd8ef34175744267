"""The staff banner: a context processor that lists firing alerts on every
page a staff member sees (one indexed query, staff only)."""

from __future__ import annotations

from django.http import HttpRequest

from resilience.models import AlertIncident


def firing_alerts(request: HttpRequest) -> dict[str, list[AlertIncident]]:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not user.is_staff:
        return {}
    try:
        incidents = list(AlertIncident.objects.filter(resolved_at__isnull=True).select_related("rule")[:5])
    except Exception:  # a database hiccup must not take every staff page down
        return {}
    return {"firing_alerts": incidents}
