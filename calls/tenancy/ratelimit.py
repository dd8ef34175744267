"""The JSON API's rate limit: at most CALLIQ_API_RATE_LIMIT requests per
minute per API token, and CALLIQ_API_USER_RATE_LIMIT per user over all their
tokens and their session together, counted with django-ratelimit (a fixed
window in the throttle cache, i.e. Redis, so every worker shares one count).

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
USER_RATE_LIMIT_GROUP = "calliq.api-user"


def api_rate_limit_response(request: HttpRequest, token: ApiToken | None) -> HttpResponse | None:
    """Count this API request against the token (if it came with one) and
    against its user, whatever the credential (every token and session of a
    person share one count, so minting tokens buys no requests); the 429 to
    send if either is over its limit, else None."""
    user_id = token.user_id if token is not None else request.user.pk
    everyone = "Your account (all its tokens and its session together)"
    limits = [(USER_RATE_LIMIT_GROUP, f"u{user_id}", settings.CALLIQ_API_USER_RATE_LIMIT, everyone)]
    if token is not None:
        limits.insert(0, (RATE_LIMIT_GROUP, str(token.pk), settings.CALLIQ_API_RATE_LIMIT, "This API token"))
    refusal = None
    for group, key, per_minute, who in limits:
        # Every count is incremented, so a token that is refused still spends its user's budget.
        limited = over_limit(request, group, key, per_minute, who)
        refusal = refusal or limited
    return refusal


def over_limit(request: HttpRequest, group: str, key: str, per_minute: int, who: str) -> HttpResponse | None:
    if per_minute <= 0:
        return None
    try:
        usage = get_usage(
            request, group=group, key=lambda _group, _request: key, rate=f"{per_minute}/m", increment=True
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
        f"{who} made more than {per_minute} requests in a minute. Try again in {retry_after} s.",
    )
    response["Retry-After"] = str(retry_after)
    return response
