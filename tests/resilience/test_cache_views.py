"""@cached_view through the real middleware, sign-in and Bearer tokens."""

from __future__ import annotations

import gzip
import threading

import brotli
import pytest
from django.db import connection, transaction
from django.test import Client, override_settings

from calls.events import announce_bulk_change
from calls.models import Call
from calls.tenancy.models import ApiToken
from resilience.cache import cache_service
from tests import factories
from tests.resilience import cache_fixtures, cache_urls

fresh_cache_state = cache_fixtures.fresh_cache_state
private_redis = cache_fixtures.private_redis

pytestmark = pytest.mark.urls("tests.resilience.cache_urls")

TABLE = "/cache-test/calls/"
API = "/api/cache-test/calls"  # under /api/: the only place a Bearer token counts


@pytest.fixture(autouse=True)
def _reset_counts():
    cache_urls.computations.clear()


@pytest.fixture
def many_calls(org, member):
    return [factories.make_call(org, rep=member.user, customer_company=f"Company {i:03}") for i in range(30)]


def bearer(member) -> dict[str, str]:
    _token, raw = ApiToken.issue(user=member.user, organization=member.organization, name="tests")
    return {"Authorization": f"Bearer {raw}"}


def test_a_second_request_is_a_hit_that_does_not_run_the_view(signed_in, call):
    first = signed_in.get(TABLE)
    second = signed_in.get(TABLE)
    assert (first["X-Cache"], second["X-Cache"]) == ("MISS", "HIT")
    assert call.title in second.text
    assert cache_urls.computations["table"] == 1


def test_cached_responses_vary_on_principal_and_htmx_and_stay_private(signed_in, call):
    signed_in.get(TABLE)
    hit = signed_in.get(TABLE)
    vary = {v.strip().lower() for v in hit["Vary"].split(",")}
    assert {"cookie", "authorization", "hx-request"} <= vary
    assert "private" in hit["Cache-Control"]


def test_an_htmx_partial_and_the_full_page_are_different_entries(signed_in, call):
    full = signed_in.get(TABLE)
    partial = signed_in.get(TABLE, headers={"HX-Request": "true"})
    assert (full["X-Cache"], partial["X-Cache"]) == ("MISS", "MISS")
    assert "<html" in full.text
    assert "<html" not in partial.text
    assert signed_in.get(TABLE, headers={"HX-Request": "true"})["X-Cache"] == "HIT"
    history = signed_in.get(TABLE, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in history.text


def test_the_query_string_is_normalised_into_the_key(signed_in, call):
    assert signed_in.get(TABLE + "?b=2&a=1")["X-Cache"] == "MISS"
    assert signed_in.get(TABLE + "?a=1&b=2")["X-Cache"] == "HIT"
    assert signed_in.get(TABLE + "?a=1&b=3")["X-Cache"] == "MISS"


def test_two_users_of_different_organizations_on_the_same_url_never_see_each_others_calls(
    member, other_member, call, other_org_call
):
    ours, theirs = Client(), Client()
    ours.force_login(member.user)
    theirs.force_login(other_member.user)
    for _ in range(2):
        mine = ours.get(TABLE)
        other = theirs.get(TABLE)
        assert call.title in mine.text
        assert other_org_call.title not in mine.text
        assert other_org_call.title in other.text
        assert call.title not in other.text
    assert (mine["X-Cache"], other["X-Cache"]) == ("HIT", "HIT")


def test_api_tokens_of_different_organizations_never_share_an_entry(member, other_member, call, other_org_call):
    client = Client()
    ours, theirs = bearer(member), bearer(other_member)
    for _ in range(2):
        mine = client.get(API, headers=ours).json()
        other = client.get(API, headers=theirs).json()
        assert [c["title"] for c in mine["calls"]] == [call.title]
        assert [c["title"] for c in other["calls"]] == [other_org_call.title]
    assert client.get(API, headers=ours)["X-Cache"] == "HIT"


def test_a_token_and_a_session_of_the_same_user_do_not_share_an_entry(signed_in, member, call):
    assert signed_in.get(API)["X-Cache"] == "MISS"
    assert Client().get(API, headers=bearer(member))["X-Cache"] == "MISS"
    assert signed_in.get(API)["X-Cache"] == "HIT"


def test_a_revoked_token_gets_a_401_not_the_cached_response(member, call):
    token, raw = ApiToken.issue(user=member.user, organization=member.organization, name="soon revoked")
    client = Client()
    assert client.get(API, headers={"Authorization": f"Bearer {raw}"})["X-Cache"] == "MISS"
    token.revoke()
    assert client.get(API, headers={"Authorization": f"Bearer {raw}"}).status_code == 401


def test_an_etag_revalidation_gets_a_304(signed_in, call):
    first = signed_in.get(TABLE)
    etag = first["ETag"]
    revalidated = signed_in.get(TABLE, headers={"If-None-Match": etag})
    assert revalidated.status_code == 304
    assert revalidated["ETag"] == etag
    assert revalidated["X-Cache"] == "HIT"
    assert signed_in.get(TABLE, headers={"If-None-Match": 'W/"something-else"'}).status_code == 200


def test_saving_a_call_shows_on_the_next_request(signed_in, call, django_capture_on_commit_callbacks):
    signed_in.get(TABLE)
    detail_url = f"/cache-test/calls/{call.pk}/"
    signed_in.get(detail_url)
    with django_capture_on_commit_callbacks(execute=True):
        call.title = "Renamed after the renewal"
        call.save()
    table, detail = signed_in.get(TABLE), signed_in.get(detail_url)
    assert (table["X-Cache"], detail["X-Cache"]) == ("MISS", "MISS")
    assert "Renamed after the renewal" in table.text
    assert "Renamed after the renewal" in detail.text


def test_a_new_transcript_or_analysis_invalidates_the_call_detail(signed_in, call, django_capture_on_commit_callbacks):
    detail_url = f"/cache-test/calls/{call.pk}/"
    signed_in.get(detail_url)
    with django_capture_on_commit_callbacks(execute=True):
        factories.make_transcript(call)
    assert signed_in.get(detail_url)["X-Cache"] == "MISS"
    with django_capture_on_commit_callbacks(execute=True):
        factories.make_analysis(call)
    assert signed_in.get(detail_url)["X-Cache"] == "MISS"
    assert signed_in.get(detail_url)["X-Cache"] == "HIT"


def test_a_bulk_update_announced_by_its_author_invalidates_the_table(
    signed_in, org, call, django_capture_on_commit_callbacks
):
    signed_in.get(TABLE)
    with django_capture_on_commit_callbacks(execute=True):
        Call.objects.for_org(org).update(customer_company="Bulk Renamed Inc")
        announce_bulk_change(organization_id=org.pk, started_between=None, call_ids=[call.pk])
    response = signed_in.get(TABLE)
    assert response["X-Cache"] == "MISS"
    assert "Bulk Renamed Inc" in response.text


def test_a_change_in_another_organization_leaves_our_entries_alone(
    signed_in, other_org_call, call, django_capture_on_commit_callbacks
):
    signed_in.get(TABLE)
    with django_capture_on_commit_callbacks(execute=True):
        other_org_call.title = "Changed elsewhere"
        other_org_call.save()
    assert signed_in.get(TABLE)["X-Cache"] == "HIT"


def test_signing_out_and_in_again_starts_from_fresh_per_user_entries(client, member, call):
    client.force_login(member.user)
    client.get(TABLE)
    assert client.get(TABLE)["X-Cache"] == "HIT"
    client.logout()
    client.force_login(member.user)
    assert client.get(TABLE)["X-Cache"] == "MISS"


def test_a_role_change_or_an_organization_rename_shows_on_the_next_request(
    signed_in, member, org, call, django_capture_on_commit_callbacks
):
    signed_in.get(TABLE)
    with django_capture_on_commit_callbacks(execute=True):
        member.role = "rep"
        member.save()
    assert signed_in.get(TABLE)["X-Cache"] == "MISS"
    with django_capture_on_commit_callbacks(execute=True):
        org.name = "Acme Renamed"
        org.save()
    response = signed_in.get(TABLE)
    assert response["X-Cache"] == "MISS"
    assert "Acme Renamed" in response.text


def test_signed_out_visitors_are_redirected_and_nothing_is_cached(client, call):
    response = client.get(TABLE)
    assert response.status_code == 302
    assert cache_urls.computations["table"] == 0


@pytest.mark.parametrize("url", ["/cache-test/cookie/", "/cache-test/private/", "/cache-test/vary/"])
def test_responses_that_set_cookies_are_private_or_vary_on_star_are_never_stored(signed_in, url):
    statuses = [signed_in.get(url)["X-Cache"] for _ in range(2)]
    assert statuses == ["BYPASS", "BYPASS"]
    assert sum(cache_urls.computations.values()) == 2


def test_a_pending_flash_message_is_shown_not_cached(signed_in, call):
    signed_in.get(TABLE)
    signed_in.get("/cache-test/message/")
    with_message = signed_in.get(TABLE)
    assert with_message["X-Cache"] == "BYPASS"
    assert "Saved your changes." in with_message.text
    after = signed_in.get(TABLE)
    assert after["X-Cache"] == "HIT"
    assert "Saved your changes." not in after.text


def token_in(html: str) -> str:
    return html.split('name="csrfmiddlewaretoken" value="')[1].split('"')[0]


def test_the_stored_page_carries_no_csrf_token_and_the_cookie_value_posts(member, call):
    first, second = Client(enforce_csrf_checks=True), Client(enforce_csrf_checks=True)
    first.force_login(member.user)
    miss = first.get(TABLE)
    assert miss["X-Cache"] == "MISS"
    assert token_in(miss.text)  # the renderer's own response keeps its own token
    second.cookies = first.cookies.__class__(first.cookies)  # the same session...
    del second.cookies["csrftoken"]  # ...from another browser, without a CSRF cookie yet
    hit = second.get(TABLE)
    assert hit["X-Cache"] == "HIT"
    assert token_in(hit.text) == ""  # nobody's token in stored HTML
    assert token_in(miss.text) not in hit.text
    cookie = second.cookies["csrftoken"].value  # handed out with the cached page
    # What static/js/csrf.js does: the blank input filled from the cookie on submit...
    assert second.post("/accounts/logout/", {"csrfmiddlewaretoken": cookie}).status_code in (200, 302)
    # ...and the header on htmx requests; without either the post is refused.
    first.force_login(member.user)
    assert first.post("/accounts/logout/", {"csrfmiddlewaretoken": ""}).status_code == 403
    header = {"X-CSRFToken": first.cookies["csrftoken"].value}
    assert first.post("/accounts/logout/", {"csrfmiddlewaretoken": ""}, headers=header).status_code in (200, 302)


def test_a_hit_is_served_in_the_stored_compressed_form(signed_in, many_calls):
    miss = signed_in.get(API)
    br = signed_in.get(API, headers={"Accept-Encoding": "gzip, br"})
    gz = signed_in.get(API, headers={"Accept-Encoding": "gzip"})
    plain = signed_in.get(API)
    assert (br["X-Cache"], br["Content-Encoding"]) == ("HIT", "br")
    assert gz["Content-Encoding"] == "gzip"
    assert not plain.has_header("Content-Encoding")
    assert brotli.decompress(br.content) == gzip.decompress(gz.content) == plain.content == miss.content
    assert "accept-encoding" in br["Vary"].lower()


def test_head_is_answered_from_the_get_entry(signed_in, call):
    signed_in.get(TABLE)
    head = signed_in.head(TABLE)
    assert head["X-Cache"] == "HIT"
    assert head.content == b""


def test_statistics_are_kept_per_view(signed_in, call):
    signed_in.get(TABLE)
    signed_in.get(TABLE)
    stats = cache_service().stats()
    view = stats["views"]["tests.resilience.cache_urls.call_table"]
    assert (view["hits"], view["misses"]) == (1, 1)
    assert stats["namespaces"]["views"]["hits"] >= 1


def first_not_bypassed(client: Client) -> list:
    """Requests until one is served by the cache again (the probe finds Redis within ~50 ms)."""
    seen = []
    for _ in range(100):
        seen.append(client.get(TABLE))
        if seen[-1]["X-Cache"] != "BYPASS":
            break
        threading.Event().wait(0.02)
    return seen


def test_with_redis_stopped_pages_answer_200_and_caching_resumes_when_it_returns(signed_in, call, private_redis):
    with cache_fixtures.with_aliases(default=private_redis.url):
        assert signed_in.get(TABLE)["X-Cache"] == "MISS"
        private_redis.kill()
        down = [signed_in.get(TABLE) for _ in range(2)]
        assert [(r.status_code, r["X-Cache"]) for r in down] == [(200, "BYPASS"), (200, "BYPASS")]
        assert call.title in down[-1].text
        private_redis.start()
        back = first_not_bypassed(signed_in)
        assert all(r.status_code == 200 for r in back)
        assert [back[-1]["X-Cache"], signed_in.get(TABLE)["X-Cache"]] == ["MISS", "HIT"]


def test_with_redis_on_a_closed_port_pages_answer_200(signed_in, call):
    with cache_fixtures.with_aliases(default=f"redis://127.0.0.1:{cache_fixtures.closed_port()}/0"):
        responses = [signed_in.get(TABLE) for _ in range(2)]
    assert [(r.status_code, r["X-Cache"]) for r in responses] == [(200, "BYPASS"), (200, "BYPASS")]


def test_without_redis_configured_pages_answer_200_uncached(signed_in, call):
    with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}):
        responses = [signed_in.get(TABLE) for _ in range(2)]
    assert [(r.status_code, r["X-Cache"]) for r in responses] == [(200, "BYPASS"), (200, "BYPASS")]
    assert cache_urls.computations["table"] == 2


def test_an_invalidation_while_redis_is_down_leaves_no_stale_page_once_it_is_back(
    signed_in, call, private_redis, django_capture_on_commit_callbacks
):
    with cache_fixtures.with_aliases(default=private_redis.url):
        signed_in.get(TABLE)
        private_redis.freeze()  # Redis keeps the cached page but answers nobody
        with django_capture_on_commit_callbacks(execute=True):
            call.title = "Changed during the outage"
            call.save()
        private_redis.thaw()
        responses = first_not_bypassed(signed_in)
    assert all("Changed during the outage" in r.text for r in responses)
    assert responses[-1]["X-Cache"] == "MISS"


@pytest.mark.django_db(transaction=True)
def test_a_reader_during_an_uncommitted_change_cannot_keep_the_old_page_cached(client, member, call):
    client.force_login(member.user)
    changed, read = threading.Event(), threading.Event()

    def writer():
        try:
            with transaction.atomic():
                row = Call.objects.get(pk=call.pk)
                row.title = "Committed title"
                row.save()  # post_save asks for the bump; it must wait for the commit
                changed.set()
                assert read.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=writer)
    thread.start()
    assert changed.wait(10)
    during = client.get(TABLE)  # sees the old row and caches it
    read.set()
    thread.join(10)
    assert call.title in during.text
    after = client.get(TABLE)
    assert after["X-Cache"] == "MISS"
    assert "Committed title" in after.text


@pytest.mark.django_db(transaction=True)
def test_many_threads_requesting_a_cold_page_render_it_once(member, call):
    clients = []
    for _ in range(8):
        browser = Client()
        browser.force_login(member.user)  # each sign-in bumps the generation, all before the race
        clients.append(browser)
    barrier = threading.Barrier(len(clients))
    responses = []

    def request(browser):
        try:
            barrier.wait()
            responses.append(browser.get(TABLE))
        finally:
            connection.close()

    threads = [threading.Thread(target=request, args=(browser,)) for browser in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)

    assert [r.status_code for r in responses] == [200] * 8
    assert all(call.title in r.text for r in responses)
    assert cache_urls.computations["table"] == 1, sorted(r.headers["X-Cache"] for r in responses)
