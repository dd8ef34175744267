"""Fixtures of the webhook tests: a loopback receiver (allowed for these tests
by WEBHOOKS_ALLOW_LOOPBACK), endpoints and admins."""

from __future__ import annotations

import pytest

from calls.tenancy.models import Membership
from calls.webhooks.models import EventType, WebhookEndpoint
from tests import factories
from tests.calls.webhooks.receiver import Receiver

ALL_EVENTS = [choice.value for choice in EventType]


@pytest.fixture
def allow_loopback(settings):
    settings.WEBHOOKS_ALLOW_LOOPBACK = True


@pytest.fixture
def receiver(allow_loopback):
    server = Receiver()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def admin(org) -> Membership:
    return factories.make_membership(org, role=Membership.Role.ADMIN)


@pytest.fixture
def endpoint_and_secret(org, receiver) -> tuple[WebhookEndpoint, str]:
    return WebhookEndpoint.create_with_secret(
        organization=org, url=receiver.url(), description="CRM", events=ALL_EVENTS
    )


@pytest.fixture
def endpoint(endpoint_and_secret) -> WebhookEndpoint:
    return endpoint_and_secret[0]
