"""Template context shared by every page."""

from django.conf import settings
from django.http import HttpRequest


def calliq(request: HttpRequest) -> dict:
    return {
        "redis_available": settings.REDIS_AVAILABLE,
        "current_organization": getattr(request, "organization", None),
        "memberships": getattr(request, "memberships", []),
    }
