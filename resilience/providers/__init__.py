"""Clients for the four external APIs CallIQ depends on, speaking their real
request and response shapes: assemblyai.py (speech to text), openai.py (chat
completions returning the call analysis), paddle.py (subscriptions and
customers), resend.py (email). resilience/errors.py sorts failures into
retryable or not (the breaker and the retry policy read it too);
simulator.py answers all four on loopback for `make run` and the tests.

Every client call goes through the service's circuit breaker and retry policy
(resilience.retry)."""

# The external services, by the name their client, breaker and simulator use.
SERVICES = ("assemblyai", "openai", "paddle", "resend")
