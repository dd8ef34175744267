"""Sign-in throttling (django-axes): a (username, IP) pair is locked out after
AXES_FAILURE_LIMIT failures on either sign-in page, told how long to wait,
unlocked from the admin, counted in Redis, and never locked out by a Redis
outage."""

from __future__ import annotations

import re

import pytest
from axes.models import AccessAttempt
from django.conf import settings
from django.core.cache import caches
from django.test import Client, override_settings
from django.urls import reverse

from tests import factories

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


@pytest.fixture
def person(member):
    return member.user


def attempt(client: Client, url: str, username: str, password: str, **extra):
    return client.post(url, {"username": username, "password": password}, **extra)


def fail(client: Client, url: str, username: str, times: int, **extra):
    return [attempt(client, url, username, "wrong-password", **extra) for _ in range(times)]


def test_the_fifth_failure_locks_the_pair_out_with_a_page_that_says_how_long(client, person):
    assert settings.AXES_FAILURE_LIMIT == 5
    responses = fail(client, LOGIN, person.username, 5)
    assert [r.status_code for r in responses[:4]] == [200] * 4
    locked = responses[4]
    assert locked.status_code == 429
    assert "Too many failed sign-in attempts." in locked.text
    assert "Try again in 15 minutes." in locked.text
    assert 14 * 60 < int(locked["Retry-After"]) <= 15 * 60
    assert locked["Cache-Control"] == "no-store"
    # Styled like the sign-in page, with nothing inline for the strict CSP.
    assert "auth-page" in locked.text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", locked.text)
    assert "<style" not in locked.text
    assert not re.search(r"\sstyle=", locked.text)


def test_a_locked_out_pair_cannot_sign_in_even_with_the_right_password(client, person):
    fail(client, LOGIN, person.username, 5)
    response = attempt(client, LOGIN, person.username, factories.PASSWORD)
    assert response.status_code == 429
    assert "_auth_user_id" not in client.session


def test_the_lockout_is_per_username_and_ip(client, person, member):
    fail(client, LOGIN, person.username, 5)
    other_user = factories.make_user()
    assert attempt(Client(), LOGIN, other_user.username, factories.PASSWORD).status_code == 302
    elsewhere = attempt(Client(), LOGIN, person.username, factories.PASSWORD, REMOTE_ADDR="10.9.8.7")
    assert elsewhere.status_code == 302


def test_fewer_failures_than_the_limit_never_lock_out(client, person):
    fail(client, LOGIN, person.username, 4)
    response = attempt(client, LOGIN, person.username, factories.PASSWORD)
    assert response.status_code == 302
    # A success resets the count: four more failures are still not a lockout.
    fresh = Client()
    assert [r.status_code for r in fail(fresh, LOGIN, person.username, 4)] == [200] * 4


def test_the_admin_sign_in_is_throttled_too(client, staff_user):
    responses = fail(client, ADMIN_LOGIN, staff_user.username, 5)
    assert responses[3].status_code == 200
    assert responses[4].status_code == 429
    assert "Try again in 15 minutes." in responses[4].text
    assert attempt(client, ADMIN_LOGIN, staff_user.username, factories.PASSWORD).status_code == 429


def test_the_two_sign_in_pages_share_one_count(client, staff_user):
    fail(client, LOGIN, staff_user.username, 3)
    fail(client, ADMIN_LOGIN, staff_user.username, 2)
    assert attempt(client, LOGIN, staff_user.username, factories.PASSWORD).status_code == 429


def test_a_lockout_is_listed_in_the_admin_and_deleting_it_unlocks(client, person, staff_user):
    fail(client, LOGIN, person.username, 5)
    lockout = AccessAttempt.objects.get(username=person.username)
    assert lockout.ip_address == "127.0.0.1"
    assert lockout.failures_since_start == 5
    admin = Client()
    admin.force_login(staff_user)
    listing = admin.get(reverse("admin:axes_accessattempt_changelist"))
    assert person.username in listing.text
    assert "Locked Out" in listing.text
    deleted = admin.post(reverse("admin:axes_accessattempt_delete", args=[lockout.pk]), {"post": "yes"})
    assert deleted.status_code == 302
    assert attempt(client, LOGIN, person.username, factories.PASSWORD).status_code == 302


def test_only_the_failure_that_locks_out_writes_a_row(client, person):
    fail(client, LOGIN, person.username, 4)
    assert not AccessAttempt.objects.exists()
    fail(client, LOGIN, person.username, 3)
    assert AccessAttempt.objects.count() == 1


def test_the_count_is_in_redis_so_every_worker_sees_it(person):
    # Separate clients stand for separate workers: the count is not in the process or the session.
    for _ in range(5):
        attempt(Client(), LOGIN, person.username, "wrong-password")
    assert attempt(Client(), LOGIN, person.username, factories.PASSWORD).status_code == 429


def test_the_count_survives_the_page_cache_being_emptied(person):
    # Page entries filling the cache's Redis (allkeys-lru) must not evict the count.
    fail(Client(), LOGIN, person.username, 5)
    caches["default"].delete_pattern("*")  # every key of the page cache, as an LRU eviction could
    assert attempt(Client(), LOGIN, person.username, factories.PASSWORD).status_code == 429
    assert settings.AXES_CACHE == "throttle"
    assert settings.CACHES["throttle"]["LOCATION"] != settings.CACHES["default"]["LOCATION"]


def test_with_redis_down_sign_in_still_works_and_nobody_is_locked_out(person, private_redis):
    cache = {**settings.CACHES, "throttle": {**settings.CACHES["throttle"], "LOCATION": private_redis.url}}
    with override_settings(CACHES=cache):
        client = Client()
        fail(client, LOGIN, person.username, 4)
        private_redis.kill()
        assert [r.status_code for r in fail(client, LOGIN, person.username, 6)] == [200] * 6
        response = attempt(client, LOGIN, person.username, factories.PASSWORD)
        assert response.status_code == 302
        assert response.url == reverse("calls:list")


def test_a_request_less_authenticate_is_not_a_web_sign_in_and_still_works(person):
    from django.contrib.auth import authenticate

    assert authenticate(username=person.username, password=factories.PASSWORD) == person
