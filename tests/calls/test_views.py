"""The calls dashboard page, its htmx fragments, and call detail."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calls.filters import Sort
from calls.keyset import BEFORE, Position, encode_cursor
from calls.models import Call
from tests import factories
from tests.calls.helpers import bulk_calls

HTMX = {"HX-Request": "true"}
# Queries every signed-in page makes before the view runs: session, user, memberships.
MIDDLEWARE_TABLES = ("django_session", "auth_user", "calls_membership")


@pytest.fixture
def sixty_calls(org, member):
    return bulk_calls(org, [{"title": f"Numbered call {n:02d}", "rep": member.user} for n in range(60)])


def titles_in(html: str) -> list[str]:
    return re.findall(r'class="row-link"[^>]*>([^<]+)</a>', html)


def view_queries(client, url: str, **kwargs) -> list[str]:
    """The SQL a request runs beyond what the middleware runs on every page."""
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, **kwargs)
    assert response.status_code == 200
    return [q["sql"] for q in queries.captured_queries if not is_middleware_query(q["sql"])]


def is_middleware_query(sql: str) -> bool:
    """The session, the signed-in user (by id) and their memberships."""
    table = re.search(r'FROM "(\w+)"', sql).group(1)
    if table == "auth_user":
        return 'WHERE "auth_user"."id" = ' in sql
    return table in MIDDLEWARE_TABLES


def test_the_table_shows_the_columns_of_a_call(signed_in, call):
    response = signed_in.get(reverse("calls:list"))
    html = response.text
    assert call.title in html
    assert call.customer_name in html
    assert call.customer_company in html
    assert call.rep.get_full_name() in html
    assert f'data-href="{call.get_absolute_url()}"' in html
    assert "badge-completed" in html


def test_the_page_and_its_fragment_vary_on_hx_request(signed_in, call):
    page = signed_in.get(reverse("calls:list"))
    fragment = signed_in.get(reverse("calls:list"), headers=HTMX)
    assert "HX-Request" in page["Vary"]
    assert "HX-Request" in fragment["Vary"]
    assert "<html" in page.text
    assert "<html" not in fragment.text
    assert 'id="calls-results"' in fragment.text


def test_a_history_restore_gets_the_full_page(signed_in, call):
    response = signed_in.get(reverse("calls:list"), headers=HTMX | {"HX-History-Restore-Request": "true"})
    assert "<html" in response.text
    assert 'id="call-filters"' in response.text


def test_pages_link_forward_and_back_without_javascript(signed_in, sixty_calls):
    first = signed_in.get(reverse("calls:list") + "?size=25")
    assert len(titles_in(first.text)) == 25
    next_url = re.search(r'href="([^"]+)" hx-get="[^"]+" rel="next"', first.text).group(1).replace("&amp;", "&")
    second = signed_in.get(next_url)
    third_url = re.search(r'href="([^"]+)" hx-get="[^"]+" rel="next"', second.text).group(1).replace("&amp;", "&")
    third = signed_in.get(third_url)
    seen = titles_in(first.text) + titles_in(second.text) + titles_in(third.text)
    assert sorted(seen) == sorted(c.title for c in sixty_calls)
    assert 'rel="next"' not in third.text


def test_the_last_page_link_jumps_to_the_oldest_calls(signed_in, sixty_calls):
    cursor = encode_cursor(Sort(), Position(direction=BEFORE))
    response = signed_in.get(reverse("calls:list"), {"cursor": cursor, "size": 25})
    oldest_first = sorted(sixty_calls, key=lambda c: (c.started_at, c.pk))
    assert titles_in(response.text) == [c.title for c in reversed(oldest_first[:25])]


def test_sort_links_flip_the_direction_of_the_active_column(signed_in, sixty_calls):
    response = signed_in.get(reverse("calls:list"), {"sort": "-score"})
    assert 'href="/calls/?sort=score"' in response.text
    assert 'aria-sort="descending"' in response.text


def test_an_invalid_filter_is_a_400_with_the_error_next_to_its_field(signed_in, call):
    response = signed_in.get(reverse("calls:list"), {"score_min": "lots", "status": "completed"})
    assert response.status_code == 400
    assert re.search(r'id="error-score_min" class="form-error">Enter a whole number', response.text)
    # The valid filter still applies and the page still shows the table.
    assert call.title in response.text


def test_an_invalid_filter_in_a_fragment_updates_the_error_out_of_band(signed_in, call):
    response = signed_in.get(reverse("calls:list"), {"score_max": "200"}, headers=HTMX)
    assert response.status_code == 400
    assert re.search(r'id="error-score_max" class="form-error" hx-swap-oob="true">Ensure', response.text)
    assert 'id="error-q" class="form-error" hx-swap-oob="true"></span>' in response.text


def test_a_tampered_cursor_shows_the_first_page_with_a_notice(signed_in, sixty_calls):
    response = signed_in.get(reverse("calls:list"), {"cursor": "abc:def"})
    assert response.status_code == 200
    assert "This page link is not valid" in response.text
    assert len(titles_in(response.text)) == 50


def test_the_search_box_narrows_the_table(signed_in, sixty_calls):
    response = signed_in.get(reverse("calls:list"), {"q": "call 07"}, headers=HTMX)
    assert titles_in(response.text) == ["Numbered call 07"]
    assert "1 call" in response.text


def test_the_total_is_shown(signed_in, sixty_calls):
    response = signed_in.get(reverse("calls:list"))
    assert re.search(r"60 calls", response.text)


def test_infinite_scroll_chunks_carry_rows_and_the_next_sentinel(signed_in, sixty_calls):
    page = signed_in.get(reverse("calls:list"), {"mode": "scroll", "size": 25})
    sentinel = re.search(r'class="sentinel sentinel-next"[^>]*hx-get="([^"]+)"', page.text)
    assert sentinel is not None
    chunk = signed_in.get(sentinel.group(1).replace("&amp;", "&"), headers=HTMX)
    assert chunk.text.count('class="call-row') == 25
    assert "<thead" not in chunk.text
    assert "sentinel-next" in chunk.text
    assert titles_in(chunk.text)[0] not in titles_in(page.text)


def test_a_chunk_url_opened_directly_is_the_full_page(signed_in, sixty_calls):
    page = signed_in.get(reverse("calls:list"), {"mode": "scroll", "size": 25})
    url = re.search(r'hx-get="([^"]+fragment=chunk)"', page.text).group(1).replace("&amp;", "&")
    assert "<html" in signed_in.get(url).text


@pytest.mark.parametrize("sort", ["-started", "score", "-sentiment"])
def test_a_full_table_page_makes_at_most_three_queries_of_its_own(signed_in, sixty_calls, sort):
    queries = view_queries(signed_in, reverse("calls:list") + f"?sort={sort}&status=completed&q=numbered")
    assert len(queries) == 3, queries  # selection + total, rows, the rep filter's choices


def test_a_table_fragment_makes_at_most_three_queries_in_all_counting_middleware(
    signed_in, sixty_calls, django_assert_max_num_queries
):
    cursor = encode_cursor(Sort(), Position(direction=BEFORE))
    url = reverse("calls:list") + f"?cursor={cursor}"
    view_only = view_queries(signed_in, url, headers=HTMX)
    assert len(view_only) <= 2
    with django_assert_max_num_queries(2 + 3):  # + session, user, memberships
        signed_in.get(url, headers=HTMX)


def test_the_table_never_shows_another_orgs_calls_in_page_fragment_or_chunk(
    signed_in, call, other_org_call, sixty_calls
):
    for params, headers in [({}, {}), ({}, HTMX), ({"mode": "scroll", "fragment": "chunk"}, HTMX)]:
        response = signed_in.get(reverse("calls:list"), params | {"q": "globex secret"}, headers=headers)
        assert other_org_call.title not in response.text
        response = signed_in.get(reverse("calls:list"), params, headers=headers)
        assert other_org_call.title not in response.text


def test_a_rep_filter_lists_the_orgs_members_only(signed_in, member, other_member):
    response = signed_in.get(reverse("calls:list"))
    assert f'<option value="{member.user.pk}"' in response.text
    assert f'<option value="{other_member.user.pk}"' not in response.text


# --- Call detail -----------------------------------------------------------------------------


def test_call_detail_shows_facts_transcript_analysis_and_pipeline(signed_in, call):
    factories.make_transcript(call)
    factories.make_analysis(call, topics=["pricing", "security review"], talk_ratio=0.62)
    response = signed_in.get(reverse("calls:detail", args=[call.pk]))
    html = response.text
    assert call.title in html
    assert "Speaker A" in html
    assert "What does pricing look like?" in html
    assert "0:04" in html  # the second utterance starts at 4.2 s
    assert "security review" in html
    assert "Send the pricing sheet" in html
    assert 'id="talk-ratio"' in html
    assert 'value="0.620"' in html
    assert html.count("step step-done") == 4


def test_call_detail_of_an_unanalysed_call_says_where_the_pipeline_is(signed_in, org):
    call = factories.make_call(org, status=Call.Status.ANALYZING, score=None, sentiment=None)
    factories.make_transcript(call)
    response = signed_in.get(reverse("calls:detail", args=[call.pk]))
    assert "Not analysed yet" in response.text
    assert "step step-current" in response.text
    assert response.text.count("step step-done") == 2


def test_call_detail_of_a_failed_call_shows_the_failure(signed_in, org):
    call = factories.make_call(org, status=Call.Status.FAILED, failure_reason="Audio unreadable", score=None)
    response = signed_in.get(reverse("calls:detail", args=[call.pk]))
    assert "step step-failed" in response.text
    assert "Audio unreadable" in response.text


def test_another_orgs_call_detail_is_a_404_that_names_nothing(signed_in, other_org_call):
    response = signed_in.get(reverse("calls:detail", args=[other_org_call.pk]))
    assert response.status_code == 404
    assert other_org_call.title not in response.text


QUERY_PARAMS = ["q", "status", "outcome", "rep", "started_from", "started_to", "score_min", "score_max"]
QUERY_PARAMS += ["sentiment", "sort", "size", "mode", "cursor", "fragment"]


@pytest.mark.sqlite
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    params=st.dictionaries(
        st.sampled_from(QUERY_PARAMS),
        st.one_of(
            st.text(max_size=40),
            st.sampled_from(["9999-12-31", "0001-01-01", "-1", "1e9", "200", "%", "_", "-score", "scroll", "chunk"]),
        ),
        max_size=6,
    ),
    htmx=st.booleans(),
)
def test_any_query_string_gets_a_page_or_a_400_never_a_500(signed_in, call, params, htmx):
    response = signed_in.get(reverse("calls:list"), params, headers=HTMX if htmx else {})
    assert response.status_code in (200, 400)
    api = signed_in.get(reverse("calls_api:list"), params)
    assert api.status_code in (200, 400)
    if api.status_code == 400:
        assert set(api.json()["error"]) == {"code", "message", "fields"}


def test_a_delayed_call_says_why_and_when_it_resumes(client, member, call):
    from datetime import timedelta

    from django.utils import timezone

    call.delayed_until = timezone.now() + timedelta(minutes=1)
    call.delay_reason = "Analysis delayed: the OpenAI breaker is open"
    call.status = call.Status.ANALYZING
    call.save()
    client.force_login(member.user)
    response = client.get(call.get_absolute_url())
    assert "Analysis delayed: the OpenAI breaker is open" in response.text
    assert "nothing is lost" in response.text
