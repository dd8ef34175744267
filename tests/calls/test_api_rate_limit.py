"""The JSON API's rate limit per token: counted in Redis, 429 + Retry-After +
a JSON error in the API's shape, and fail-open when Redis is down."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.core.cache import caches
from django.test import Client, override_settings
from django.urls import reverse

from calls.tenancy.models import ApiToken

pytestmark = pytest.mark.django_db


def api_list() -> str:
    return reverse("calls_api:list")


def bearer(member, name="script") -> dict[str, str]:
    _, raw = ApiToken.issue(user=member.user, organization=member.organization, name=name)
    return {"Authorization": f"Bearer {raw}"}


@override_settings(CALLIQ_API_RATE_LIMIT=3)
def test_a_token_over_its_limit_gets_a_429_with_retry_after_in_the_apis_shape(member, call):
    client, headers = Client(), bearer(member)
    statuses = [client.get(api_list(), headers=headers).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    limited = client.get(api_list(), headers=headers)
    assert limited.status_code == 429
    assert 1 <= int(limited["Retry-After"]) <= 60
    error = limited.json()["error"]
    assert error["code"] == "rate_limited"
    assert "3 requests in a minute" in error["message"]
    assert error["fields"] == {}


@override_settings(CALLIQ_API_RATE_LIMIT=2)
def test_each_token_has_its_own_count(member, call):
    client, first, second = Client(), bearer(member, "first"), bearer(member, "second")
    for _ in range(2):
        client.get(api_list(), headers=first)
    assert client.get(api_list(), headers=first).status_code == 429
    assert client.get(api_list(), headers=second).status_code == 200


@override_settings(CALLIQ_API_RATE_LIMIT=2)
def test_the_count_lives_in_redis_so_every_worker_shares_it(member, call):
    # Two clients stand for two workers: nothing is kept in the process.
    headers = bearer(member)
    Client().get(api_list(), headers=headers)
    Client().get(api_list(), headers=headers)
    assert Client().get(api_list(), headers=headers).status_code == 429


@override_settings(CALLIQ_API_RATE_LIMIT=2)
def test_an_unknown_token_is_refused_before_it_is_counted(member, call):
    client = Client()
    for _ in range(4):
        assert client.get(api_list(), headers={"Authorization": "Bearer ciq_nope"}).status_code == 401


@override_settings(CALLIQ_API_RATE_LIMIT=2)
def test_the_count_survives_the_page_cache_being_emptied(member, call):
    headers = bearer(member)
    client = Client()
    assert [client.get(api_list(), headers=headers).status_code for _ in range(2)] == [200, 200]
    caches["default"].delete_pattern("*")  # every key of the page cache, as an LRU eviction could
    assert client.get(api_list(), headers=headers).status_code == 429
    assert settings.RATELIMIT_USE_CACHE == "throttle"


def test_with_redis_down_the_api_still_answers(member, call, private_redis):
    cache = {**settings.CACHES, "throttle": {**settings.CACHES["throttle"], "LOCATION": private_redis.url}}
    headers = bearer(member)
    with override_settings(CACHES=cache, CALLIQ_API_RATE_LIMIT=1):
        client = Client()
        assert client.get(api_list(), headers=headers).status_code == 200
        assert client.get(api_list(), headers=headers).status_code == 429
        private_redis.kill()
        assert client.get(api_list(), headers=headers).status_code == 200


@override_settings(CALLIQ_API_RATE_LIMIT=100, CALLIQ_API_USER_RATE_LIMIT=3)
def test_new_tokens_buy_no_requests_the_user_has_one_count(member, call):
    client = Client()
    statuses = [client.get(api_list(), headers=bearer(member, f"token {i}")).status_code for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert "all its tokens and its session" in client.get(api_list(), headers=bearer(member)).json()["error"]["message"]


@override_settings(CALLIQ_API_RATE_LIMIT=100, CALLIQ_API_USER_RATE_LIMIT=2)
def test_a_signed_in_session_on_the_api_is_limited_too(signed_in, call):
    statuses = [signed_in.get(api_list()).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert signed_in.get(api_list()).json()["error"]["code"] == "rate_limited"


@override_settings(CALLIQ_API_RATE_LIMIT=100, CALLIQ_API_USER_RATE_LIMIT=2)
def test_the_session_and_the_tokens_share_the_users_count(signed_in, member, call):
    assert signed_in.get(api_list()).status_code == 200
    assert Client().get(api_list(), headers=bearer(member)).status_code == 200
    assert signed_in.get(api_list()).status_code == 429


@override_settings(CALLIQ_API_TOKENS_PER_USER=2)
def test_a_person_may_hold_only_so_many_active_tokens(signed_in, member):
    url = reverse("tokens")
    assert signed_in.post(url, {"name": "one"}).status_code == 200
    assert signed_in.post(url, {"name": "two"}).status_code == 200
    refused = signed_in.post(url, {"name": "three"})
    assert refused.status_code == 400
    assert "the most one person may hold" in refused.text
    assert ApiToken.objects.filter(user=member.user).count() == 2
    # Revoking one makes room again.
    ApiToken.objects.filter(user=member.user).first().revoke()
    assert signed_in.post(url, {"name": "three"}).status_code == 200
