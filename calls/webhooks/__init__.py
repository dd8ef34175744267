"""Webhooks out: an organization's admins register HTTPS endpoints, and CallIQ
POSTs them `call.completed`, `call.failed` and `call.outcome_changed` events,
signed the Standard Webhooks way.

models.py       endpoints, events (the signed messages), deliveries and their attempt log
events.py       emit_event(): the one way an event is raised, in the caller's transaction; the test event
signing.py      secrets and the webhook-id / webhook-timestamp / webhook-signature headers
destinations.py which URLs and addresses may be called (https, no credentials, no SSRF)
delivery.py     one delivery attempt: breaker, HTTP, log, backoff, automatic disabling
tasks.py        Celery tasks (deliver one, sweep the due ones, prune the log), queueing, redelivery
forms.py, views.py, urls.py   the admins' settings pages (/settings/webhooks/)

Imports run one way (events -> tasks -> delivery -> destinations, signing,
models), and nothing here imports calls.models or calls.pipeline: the email to
the admins of a disabled endpoint goes through the `endpoint_disabled` signal,
which calls.pipeline (the outbox's owner) receives.
"""
