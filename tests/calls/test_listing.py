"""Keyset pages, cursors, filters, search and totals of the calls dashboard."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.core import signing
from django.http import QueryDict
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from calls import selection
from calls.filters import DEFAULT_PAGE_SIZE, SORT_COLUMNS, CallFilters, Sort
from calls.forms import parse_listing
from calls.keyset import AFTER, CURSOR_SALT, InvalidCursor, Position, calls_page, encode_cursor
from calls.models import Call
from calls.selection import table_page, table_summary
from tests.calls.helpers import BASE_TIME, bulk_calls, expected_order, walk_backward, walk_forward

ALL_SORTS = [Sort(key, descending) for key in SORT_COLUMNS for descending in (True, False)]


@pytest.fixture
def tied_calls(org):
    """Lots of ties on every sort column, and unanalysed calls without score or sentiment."""
    rows = []
    for n in range(23):
        analysed = n % 4 != 0
        rows.append(
            {
                "started_at": BASE_TIME + timedelta(hours=n % 5),
                "duration_seconds": 60 * (n % 3),
                "score": (n % 3) * 10 if analysed else None,
                "sentiment": [-0.5, 0.0, 0.5][n % 3] if analysed else None,
                "status": Call.Status.COMPLETED if analysed else Call.Status.TRANSCRIBING,
            }
        )
    return bulk_calls(org, rows)


@pytest.mark.parametrize("sort", ALL_SORTS, ids=lambda s: s.param)
def test_walking_forward_visits_every_call_once_in_order_despite_ties_and_nulls(org, tied_calls, sort):
    walked = walk_forward(Call.objects.for_org(org), sort, size=4)
    assert walked == expected_order(tied_calls, sort)


@pytest.mark.parametrize("sort", ALL_SORTS, ids=lambda s: s.param)
def test_walking_backward_from_the_last_page_gives_the_same_order(org, tied_calls, sort):
    walked = walk_backward(Call.objects.for_org(org), sort, size=4)
    assert walked == expected_order(tied_calls, sort)


@pytest.mark.parametrize("sort", ALL_SORTS, ids=lambda s: s.param)
def test_previous_from_a_next_page_is_exactly_the_page_before(org, tied_calls, sort):
    calls = Call.objects.for_org(org)
    first = calls_page(calls, sort, 5)
    second = calls_page(calls, sort, 5, first.next_cursor)
    third = calls_page(calls, sort, 5, second.next_cursor)
    back = calls_page(calls, sort, 5, third.prev_cursor)
    assert [c.pk for c in back.rows] == [c.pk for c in second.rows]
    assert back.has_prev
    assert back.has_next


@pytest.mark.parametrize("descending", [True, False])
def test_unanalysed_calls_sort_after_analysed_ones_in_both_directions(org, tied_calls, descending):
    rows = walk_forward(Call.objects.for_org(org), Sort("score", descending), size=50)
    scores = dict(Call.objects.values_list("pk", "score"))
    first_null = next(i for i, pk in enumerate(rows) if scores[pk] is None)
    assert all(scores[pk] is None for pk in rows[first_null:])
    assert len(rows) == len(tied_calls)


def test_the_first_page_says_there_is_no_previous_and_the_last_no_next(org, tied_calls):
    calls = Call.objects.for_org(org)
    first = calls_page(calls, Sort(), 10)
    last = calls_page(calls, Sort(), 10, first.last_cursor)
    assert not first.has_prev
    assert first.prev_cursor is None
    assert first.has_next
    assert last.has_prev
    assert not last.has_next
    assert last.next_cursor is None
    assert len(last.rows) == 10


@pytest.mark.sqlite
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    data=st.lists(
        st.tuples(
            st.integers(0, 3),  # started (hours): many ties
            st.integers(0, 2),  # duration (minutes)
            st.one_of(st.none(), st.integers(0, 3)),  # score, often missing
            st.one_of(st.none(), st.sampled_from([-1.0, -0.25, 0.0, 0.3, 1.0])),
        ),
        max_size=30,
    ),
    sort=st.sampled_from(ALL_SORTS),
    size=st.integers(1, 7),
)
def test_property_any_data_any_sort_any_page_size_walks_every_call_once(org, data, sort, size):
    Call.objects.for_org(org).delete()
    calls = bulk_calls(
        org,
        [
            {
                "started_at": BASE_TIME + timedelta(hours=h),
                "duration_seconds": 60 * d,
                "score": score,
                "sentiment": sentiment,
            }
            for h, d, score, sentiment in data
        ],
    )
    queryset = Call.objects.for_org(org)
    assert walk_forward(queryset, sort, size) == expected_order(calls, sort)
    assert walk_backward(queryset, sort, size) == expected_order(calls, sort)


def test_a_tampered_cursor_gives_the_first_page_with_a_notice(org, tied_calls):
    calls = Call.objects.for_org(org)
    tampered = calls_page(calls, Sort(), 5).next_cursor[:-3] + "xyz"
    page = calls_page(calls, Sort(), 5, tampered)
    assert "not valid" in page.notice
    assert [c.pk for c in page.rows] == [c.pk for c in calls_page(calls, Sort(), 5).rows]


def test_a_tampered_cursor_raises_when_strict(org, tied_calls):
    with pytest.raises(InvalidCursor):
        calls_page(Call.objects.for_org(org), Sort(), 5, "garbage", strict=True)


def test_a_cursor_signed_for_another_sort_is_refused(org, tied_calls):
    cursor = calls_page(Call.objects.for_org(org), Sort("score"), 5).next_cursor
    page = calls_page(Call.objects.for_org(org), Sort("duration"), 5, cursor)
    assert "another sort" in page.notice


def test_a_correctly_signed_cursor_with_a_malformed_value_is_refused_not_a_500(org, tied_calls):
    forged = signing.dumps({"s": "-started", "d": AFTER, "v": "not a date", "i": 3}, salt=CURSOR_SALT)
    with pytest.raises(InvalidCursor):
        calls_page(Call.objects.for_org(org), Sort(), 5, forged, strict=True)


def test_cursors_are_opaque_and_signed(org, tied_calls):
    call = tied_calls[0]
    cursor = encode_cursor(Sort("score"), Position(AFTER, value=call.score, call_id=call.pk))
    assert '"i"' not in cursor
    assert "score" not in cursor
    assert signing.loads(cursor, salt=CURSOR_SALT)["i"] == call.pk
    with pytest.raises(signing.BadSignature):
        signing.loads(cursor, salt="another purpose")


def test_a_page_whose_rows_were_deleted_offers_the_way_back(org, tied_calls):
    calls = Call.objects.for_org(org)
    first = calls_page(calls, Sort(), 20)
    Call.objects.filter(pk__in=[c.pk for c in calls_page(calls, Sort(), 20, first.next_cursor).rows]).delete()
    empty = calls_page(calls, Sort(), 20, first.next_cursor)
    assert empty.rows == []
    back = calls_page(calls, Sort(), 20, empty.prev_cursor)
    assert [c.pk for c in back.rows] == [c.pk for c in first.rows]


# --- Filters and search -------------------------------------------------------------------


def filtered_titles(org, query: str) -> set[str]:
    parsed = parse_listing(QueryDict(query))
    assert parsed.errors == {}
    return set(Call.objects.for_org(org).filtered(parsed.filters).values_list("title", flat=True))


@pytest.fixture
def varied_calls(org, member):
    day = BASE_TIME.replace(hour=12)
    return bulk_calls(
        org,
        [
            {"title": "Won big", "outcome": "won", "score": 90, "sentiment": 0.8, "rep": member.user},
            {"title": "Lost one", "outcome": "lost", "score": 20, "sentiment": -0.7},
            {"title": "Pending", "outcome": "", "score": None, "sentiment": None, "status": "transcribing"},
            {"title": "Meh call", "outcome": "follow_up", "score": 55, "sentiment": 0.1, "started_at": day},
            {"title": "Failed upload", "status": "failed", "score": None, "sentiment": None},
            {"title": "Acme renewal", "customer_company": "ACME Corp", "customer_name": "Wile E."},
            {"title": "100% sure", "customer_name": "Road Runner"},
        ],
    )


def test_filters_by_several_statuses(org, varied_calls):
    assert filtered_titles(org, "status=failed&status=transcribing") == {"Pending", "Failed upload"}


def test_filters_by_outcome_including_unknown(org, varied_calls):
    assert filtered_titles(org, "outcome=won") == {"Won big"}
    assert "Pending" in filtered_titles(org, "outcome=unknown")
    assert "Won big" not in filtered_titles(org, "outcome=unknown")


def test_filters_by_rep(org, member, varied_calls):
    assert filtered_titles(org, f"rep={member.user.pk}") == {"Won big"}


def test_filters_by_score_range_and_sentiment(org, varied_calls):
    assert filtered_titles(org, "score_min=50&score_max=60") >= {"Meh call"}
    assert "Won big" not in filtered_titles(org, "score_min=50&score_max=60")
    assert filtered_titles(org, "sentiment=positive") == {"Won big"}
    assert filtered_titles(org, "sentiment=negative") == {"Lost one"}
    assert "Meh call" in filtered_titles(org, "sentiment=neutral")
    assert "Pending" not in filtered_titles(org, "sentiment=neutral")


def test_filters_by_an_inclusive_date_range_in_local_time(org, varied_calls):
    day = BASE_TIME.replace(hour=12)
    others = {c.title for c in varied_calls if c.started_at.date() == day.date()}
    titles = filtered_titles(org, f"started_from={day.date()}&started_to={day.date()}")
    assert "Meh call" in titles
    assert titles == others | {"Meh call"}
    assert "Meh call" not in filtered_titles(org, f"started_to={day.date() - timedelta(days=1)}")


def test_search_matches_title_customer_and_company_ignoring_case(org, varied_calls):
    assert filtered_titles(org, "q=acme") == {"Acme renewal"}
    assert filtered_titles(org, "q=wile") == {"Acme renewal"}
    assert filtered_titles(org, "q=acme corp") == {"Acme renewal"}
    assert filtered_titles(org, "q=runner") == {"100% sure"}


def test_search_treats_percent_and_underscore_literally(org, varied_calls):
    assert filtered_titles(org, "q=100%") == {"100% sure"}
    assert filtered_titles(org, "q=on_e") == set()


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=bogus", "status"),
        ("outcome=maybe", "outcome"),
        ("rep=abc", "rep"),
        ("started_from=2024-13-45", "started_from"),
        ("started_from=2024-05-02&started_to=2024-05-01", "started_to"),
        ("score_min=-1", "score_min"),
        ("score_max=101", "score_max"),
        ("score_min=80&score_max=20", "score_max"),
        ("sentiment=ecstatic", "sentiment"),
        ("q=ab", "q"),
        ("sort=-title", "sort"),
        ("size=1000", "size"),
        ("mode=grid", "mode"),
    ],
)
def test_invalid_values_are_reported_per_field_and_left_out(query, field):
    parsed = parse_listing(QueryDict(query))
    assert list(parsed.errors) == [field]
    assert parsed.sort == Sort() or field != "sort"
    assert parsed.size == DEFAULT_PAGE_SIZE or field != "size"


def test_the_same_filter_always_gives_the_same_query_string():
    a = CallFilters(statuses=("failed", "completed"), q="acme", started_from=date(2024, 1, 2))
    b = CallFilters(statuses=("completed", "failed"), q="acme", started_from=date(2024, 1, 2))
    assert a.querystring == b.querystring
    assert parse_listing(QueryDict(a.querystring)).filters == CallFilters(
        statuses=("completed", "failed"), q="acme", started_from=date(2024, 1, 2)
    )


# --- Totals and query counts -----------------------------------------------------------------


def test_the_total_is_exact_below_the_limit(org, member, tied_calls):
    _, total = table_summary(org, member.user, Call.objects.for_org(org))
    assert total.value == len(tied_calls)
    assert total.exact


def test_above_the_limit_the_total_is_the_planners_estimate_and_says_so(org, member, tied_calls, monkeypatch):
    monkeypatch.setattr(selection, "EXACT_COUNT_LIMIT", 5)
    _, total = table_summary(org, member.user, Call.objects.for_org(org))
    assert not total.exact
    assert total.value >= 6


def test_a_table_page_takes_two_queries_whatever_the_sort(org, member, tied_calls, django_assert_max_num_queries):
    for sort in ALL_SORTS:
        parsed = parse_listing(QueryDict(f"sort={sort.param}&size=25"))
        with django_assert_max_num_queries(2):
            table = table_page(org, member.user, parsed)
            assert [c.pk for c in table.page.rows] == expected_order(tied_calls, sort)[:25]
