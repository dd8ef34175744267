"""What can go wrong when talking to a provider, sorted by what the caller
should do about it: retry it (timeouts, connection errors, 5xx, 429) or not
(a 4xx caused by our own request, or an answer we cannot read).

Beside the providers rather than inside them: the breaker and the retry policy
classify these errors, and the providers use both, so living in providers/
would make providers and breaker import each other."""

from __future__ import annotations


class ProviderError(Exception):
    """A provider call failed. `retryable` says whether trying again may help;
    `kind` is what the circuit breaker policy classifies: "timeout",
    "connection", "server_error", "rate_limited", "client_error" or "bad_response"."""

    kind = "server_error"
    retryable = True

    def __init__(
        self,
        service: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        body: str = "",
    ) -> None:
        super().__init__(f"{service}: {message}")
        self.service = service
        self.status = status
        self.retry_after = retry_after
        self.body = body[:500]


class ProviderTimeout(ProviderError):
    kind = "timeout"


class ProviderConnectionError(ProviderError):
    kind = "connection"


class ProviderServerError(ProviderError):
    kind = "server_error"


class ProviderRateLimited(ProviderError):
    kind = "rate_limited"


class ProviderClientError(ProviderError):
    """A 4xx other than 429: our request was wrong, so retrying cannot help and
    the provider is not at fault (the breaker treats it as neutral)."""

    kind = "client_error"
    retryable = False


class ProviderBadResponse(ProviderError):
    """The provider answered 2xx with something we cannot use (not JSON, wrong shape)."""

    kind = "bad_response"
    retryable = False
