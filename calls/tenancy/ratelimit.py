"""The JSON API's rate limit: at most CALLIQ_API_RATE_LIMIT requests per
minute per API token, counted with django-ratelimit (a fixed window in the
default cache, i.e. Redis, so every worker shares one count).

A client over the limit gets 429 with Retry-After (seconds to the end of the
window) and an error in the API's shape. Fail-open: with Redis down or
stalled the request goes through, and the failure is logged; a throttle
must not turn a cache outage into an API outage.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_ratelimit.core import get_usage
from django_redis.exceptions import ConnectionInterrupted
from redis.exceptions import RedisError

from calls.tenancy.http import api_error

if TYPE_CHECKING:
    from calls.tenancy.models import ApiToken

logger = logging.getLogger(__name__)

RATE_LIMIT_GROUP = "calliq.api-token"


def api_rate_limit_response(request: HttpRequest, token: ApiToken) -> HttpResponse | None:
    """Count this request against the token; the 429 to send if it is over the limit, else None."""
    per_minute = settings.CALLIQ_API_RATE_LIMIT
    if per_minute <= 0:
        return None
    try:
        usage = get_usage(
            request,
            group=RATE_LIMIT_GROUP,
            key=lambda _group, _request: str(token.pk),
            rate=f"{per_minute}/m",
            increment=True,
        )
    except (RedisError, ConnectionInterrupted, OSError) as exc:
        logger.warning("API rate limit not counted (cache unavailable, fail-open): %s", exc)
        return None
    if usage is None or not usage["should_limit"]:
        return None
    retry_after = max(1, int(usage["time_left"]))
    response = api_error(
        429,
        "rate_limited",
        f"This API token made more than {per_minute} requests in a minute. Try again in {retry_after} s.",
    )
    response["Retry-After"] = str(retry_after)
    return response
