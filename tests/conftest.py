"""Fixtures named by role. Every test runs against the real PostgreSQL and
Redis given by DATABASE_URL and REDIS_URL (see pyproject.toml for defaults)."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings

from calls.models import Call
from calls.tenancy.models import Membership, Organization
from tests import factories


@pytest.fixture(scope="session", autouse=True)
def _redis_db_is_not_the_apps() -> None:
    """Refuse to run when REDIS_URL is DB 0, the app's default: every test
    FLUSHDBs it, so `REDIS_URL=<the app's Redis> make test` would wipe the
    app's cache, breaker state and Celery queues."""
    if redis.ConnectionPool.from_url(settings.REDIS_URL).connection_kwargs.get("db", 0) in (0, "0"):
        pytest.exit(
            f"REDIS_URL={settings.REDIS_URL} is Redis DB 0, the app's default database, and every test "
            "empties its DB: point REDIS_URL at a DB of the tests' own (the default is redis://127.0.0.1:6379/1)",
            returncode=4,
        )


@pytest.fixture(autouse=True)
def _clean_redis_db(_redis_db_is_not_the_apps: None) -> None:
    """Each test starts with an empty Redis database (the tests' own DB
    number, never the app's), so cached pages and breaker state don't leak
    between tests."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.flushdb()
    client.close()


@pytest.fixture
def org(db) -> Organization:
    return factories.make_organization(name="Acme Sales", slug="acme")


@pytest.fixture
def other_org(db) -> Organization:
    return factories.make_organization(name="Globex", slug="globex")


@pytest.fixture
def member(org: Organization) -> Membership:
    return factories.make_membership(org, role=Membership.Role.MANAGER)


@pytest.fixture
def other_member(other_org: Organization) -> Membership:
    return factories.make_membership(other_org)


@pytest.fixture
def call(org: Organization, member: Membership) -> Call:
    return factories.make_call(org, rep=member.user, title="Acme renewal with Initech")


@pytest.fixture
def other_org_call(other_org: Organization, other_member: Membership) -> Call:
    return factories.make_call(other_org, rep=other_member.user, title="Globex secret expansion deal")


@pytest.fixture
def signed_in(client, member: Membership):
    """The test client, signed in as the organization's manager."""
    client.force_login(member.user)
    return client


@pytest.fixture
def staff_user(db):
    return factories.make_user(is_staff=True, is_superuser=True)


# Fixtures of the breaker, provider and pipeline tests (simulator, private Redis).
pytest_plugins = ["tests.resilience.breaker_support"]
