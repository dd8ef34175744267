"""The shared part of the provider clients: one httpx client per provider
client, the service's call timeout from its breaker policy, every request
through the breaker and the retry policy, and HTTP failures mapped onto
resilience.errors."""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx
from django.conf import settings

from resilience.breaker import get_policy
from resilience.errors import (
    ProviderBadResponse,
    ProviderClientError,
    ProviderConnectionError,
    ProviderError,
    ProviderRateLimited,
    ProviderServerError,
    ProviderTimeout,
)
from resilience.retry import execute_with_retry


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - time.time(), 0.0)


def raise_for_response(service: str, response: httpx.Response) -> None:
    status = response.status_code
    if status < 400:
        return
    body = response.text
    message = f"HTTP {status} from {response.request.method} {response.request.url.path}"
    if status == 429:
        raise ProviderRateLimited(
            service,
            message,
            status=status,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            body=body,
        )
    if status >= 500:
        raise ProviderServerError(
            service,
            message,
            status=status,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
            body=body,
        )
    # 408 (request timeout) is the provider giving up on a slow exchange: worth another try.
    if status == 408:
        raise ProviderTimeout(service, message, status=status, body=body)
    raise ProviderClientError(service, message, status=status, body=body)


class ProviderClient:
    service = ""

    def __init__(
        self,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
        max_retries: int = 3,
        initial_delay: float = 0.1,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        config = settings.PROVIDERS[self.service]
        self.config = config
        self.base_url = (base_url or config["base_url"]).rstrip("/")
        self.api_key = api_key if api_key is not None else config["api_key"]
        self.max_retries = max_retries
        self.initial_delay = initial_delay
        self.http = httpx.Client(base_url=self.base_url, headers=self.auth_headers(), transport=transport)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One HTTP exchange, no breaker, no retry: failures mapped to ProviderError."""
        timeout = get_policy(self.service).call_timeout_seconds
        try:
            response = self.http.request(method, path, timeout=timeout, **kwargs)
        except httpx.TimeoutException as exc:
            raise ProviderTimeout(self.service, f"timed out after {timeout} s: {method} {path}") from exc
        except httpx.TransportError as exc:
            raise ProviderConnectionError(self.service, f"{type(exc).__name__}: {exc}") from exc
        raise_for_response(self.service, response)
        return response

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request through the breaker with retries."""
        return execute_with_retry(self.service, self.send, self.max_retries, self.initial_delay, method, path, **kwargs)

    def request_json(self, method: str, path: str, **kwargs: Any) -> dict:
        response = self.request(method, path, **kwargs)
        try:
            data = response.json()
        except ValueError as exc:
            raise ProviderBadResponse(self.service, f"not JSON: {method} {path}", body=response.text) from exc
        if not isinstance(data, dict):
            raise ProviderBadResponse(self.service, f"expected a JSON object: {method} {path}", body=response.text)
        return data


def require(service: str, data: dict, *fields: str) -> None:
    missing = [f for f in fields if f not in data]
    if missing:
        raise ProviderBadResponse(service, f"answer lacks {', '.join(missing)}", body=str(data))


__all__ = ["ProviderClient", "ProviderError", "parse_retry_after", "raise_for_response", "require"]
