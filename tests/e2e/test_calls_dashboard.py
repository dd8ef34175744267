"""The calls dashboard in a real browser: filters, sorts, pages, the URL state
and the back button, infinite scroll over 10,000 rows, selection and export,
keyboard shortcuts."""

from __future__ import annotations

import csv
from datetime import timedelta

import pytest

from calls.models import Call
from tests.calls.helpers import BASE_TIME, bulk_calls
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ROW_IDS = "() => Array.from(document.querySelectorAll('#calls-table tr.call-row')).map(r => r.dataset.id)"


@pytest.fixture
def sixty_calls(org, member):
    statuses = [Call.Status.COMPLETED, Call.Status.COMPLETED, Call.Status.FAILED]
    return bulk_calls(
        org,
        [
            {
                "title": f"{'Acme' if n % 10 == 0 else 'Globex'} call {n:02d}",
                "status": statuses[n % 3],
                "score": n,
                "rep": member.user,
            }
            for n in range(60)
        ],
    )


def open_dashboard(page, member, query: str = "") -> None:
    sign_in(page, member.user.username)
    page.wait_for_url("**/calls/")
    if query:
        page.goto("/calls/?" + query)


def row_ids(page) -> list[int]:
    return [int(pk) for pk in page.evaluate(ROW_IDS)]


def test_filter_sort_page_live_in_the_url_and_back_restores_each_view(page, member, sixty_calls):
    open_dashboard(page, member, "size=25")
    page.get_by_label("Failed").check()
    page.wait_for_url("**status=failed**")
    failed = {c.pk for c in sixty_calls if c.status == Call.Status.FAILED}
    page.wait_for_function("() => document.querySelectorAll('#calls-table tr.call-row').length === 20")
    assert set(row_ids(page)) == failed

    page.locator("a.sort-link[data-sort=score]").click()
    page.wait_for_url("**sort=-score**")
    by_score = sorted(failed, key=lambda pk: -next(c.score for c in sixty_calls if c.pk == pk))
    page.wait_for_function(f"() => document.querySelector('#calls-table tr.call-row').dataset.id === '{by_score[0]}'")
    assert row_ids(page) == by_score

    page.get_by_label("Failed").uncheck()
    page.wait_for_function("() => !location.search.includes('status=failed')")
    assert "sort=-score" in page.url  # the sort chosen by its header link is kept by the form
    page.locator("a[data-pager=next]").first.click()
    page.wait_for_url("**cursor=**")
    second_page = row_ids(page)
    assert len(second_page) == 25

    page.go_back()
    page.wait_for_function("() => !location.search.includes('cursor=')")
    page.wait_for_selector("#calls-table tr.call-row")
    assert row_ids(page)[0] == max(sixty_calls, key=lambda c: c.score).pk

    page.go_forward()
    page.wait_for_url("**cursor=**")
    page.wait_for_selector("#calls-table tr.call-row")
    assert row_ids(page) == second_page

    page.reload()
    assert row_ids(page) == second_page
    assert page.csp_violations == []


def test_active_search_filters_as_the_person_types_and_shows_errors_next_to_the_field(page, member, sixty_calls):
    open_dashboard(page, member)
    search = page.locator("#id_q")
    search.press_sequentially("ac", delay=30)
    page.wait_for_selector("#error-q:has-text('at least 3 characters')")
    search.press_sequentially("me", delay=30)
    page.wait_for_url("**q=acme**")
    page.wait_for_function("() => document.querySelectorAll('#calls-table tr.call-row').length === 6")
    assert page.locator("#error-q").inner_text() == ""
    assert page.locator("#calls-total").inner_text().startswith("6 calls")
    assert page.csp_violations == []


def test_infinite_scroll_through_10000_rows_keeps_the_dom_window_bounded(page, member, org):
    bulk_calls(org, [{"title": f"Scroll {n}", "started_at": BASE_TIME + timedelta(minutes=n)} for n in range(10_000)])
    expected_order = list(Call.objects.for_org(org).order_by("-started_at", "-id").values_list("pk", flat=True))
    open_dashboard(page, member, "mode=scroll&size=200")
    history_length = page.evaluate("history.length")
    window_rows = 5 * 200
    seen: list[int] = []
    largest_dom = 0
    for _ in range(120):
        ids = row_ids(page)
        largest_dom = max(largest_dom, len(ids))
        assert len(ids) == len(set(ids)), "a row is in the DOM twice"
        for pk in ids:
            if not seen or expected_order.index(pk) > expected_order.index(seen[-1]):
                seen.append(pk)
        if page.locator("tbody.sentinel-next").count() == 0:
            break
        page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_function(
            "(last) => { const r = document.querySelectorAll('#calls-table tr.call-row');"
            " return r.length && r[r.length - 1].dataset.id !== last; }",
            arg=str(ids[-1]),
        )
    assert seen == expected_order
    assert largest_dom <= window_rows
    assert page.locator("tbody.sentinel-prev").count() == 1
    assert "cursor=" in page.url  # the URL names where the window starts
    assert page.evaluate("history.length") == history_length  # scrolling adds no history entries

    # Scrolling back up brings the dropped pages back, still within the window.
    for _ in range(60):
        if page.locator("tbody.sentinel-prev").count() == 0:
            break
        first = row_ids(page)[0]
        page.evaluate("window.scrollTo(0, 0)")
        page.wait_for_function(
            "(first) => document.querySelector('#calls-table tr.call-row').dataset.id !== first", arg=str(first)
        )
        assert len(row_ids(page)) <= window_rows
    assert row_ids(page)[0] == expected_order[0]
    assert page.csp_violations == []


def test_select_across_pages_survives_reload_and_exports_exactly_the_selection(page, member, sixty_calls, tmp_path):
    open_dashboard(page, member, "size=25&sort=score")
    first_pick = row_ids(page)[1]
    page.locator(f"tr[data-id='{first_pick}'] input[type=checkbox]").check()
    page.wait_for_selector("#selection-count:has-text('1 call selected')")
    page.locator("a[data-pager=next]").first.click()
    page.wait_for_url("**cursor=**")
    page.wait_for_selector(f"#calls-table tr[data-id='{first_pick}']", state="detached")
    second_pick = row_ids(page)[3]
    page.locator(f"tr[data-id='{second_pick}'] input[type=checkbox]").check()
    page.wait_for_selector("#selection-count:has-text('2 calls selected')")

    page.reload()
    assert page.locator(f"tr[data-id='{second_pick}'] input[type=checkbox]").is_checked()
    with page.expect_download() as download:
        page.locator("#export-csv").click()
    path = tmp_path / "calls.csv"
    download.value.save_as(path)
    with path.open() as handle:
        assert sorted(int(row["id"]) for row in csv.DictReader(handle)) == sorted([first_pick, second_pick])

    page.locator("#select-all-matching").click()
    page.wait_for_selector("#selection-count:has-text('All 60 calls')")
    assert all(box.is_checked() for box in page.locator("#calls-table input[type=checkbox]").all())
    assert page.csp_violations == []


def test_keyboard_shortcuts_move_select_open_and_search(page, member, sixty_calls):
    open_dashboard(page, member, "size=25")
    ids = row_ids(page)
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert page.locator("tr.call-row.is-current").get_attribute("data-id") == str(ids[1])
    page.keyboard.press("k")
    assert page.locator("tr.call-row.is-current").get_attribute("data-id") == str(ids[0])
    page.keyboard.press("x")
    page.wait_for_selector("#selection-count:has-text('1 call selected')")
    assert page.locator(f"tr[data-id='{ids[0]}'] input[type=checkbox]").is_checked()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "id_q"
    page.keyboard.press("Escape")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/calls/{ids[0]}/")
    assert page.csp_violations == []


def test_without_javascript_filters_and_pages_work_as_plain_forms_and_links(browser, live_server, member, sixty_calls):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in(page, member.user.username)
        page.goto("/calls/?size=25")
        page.get_by_label("Failed").check()
        page.get_by_role("button", name="Apply").click()
        page.wait_for_url("**status=failed**")
        assert len(row_ids_nojs(page)) == 20
        page.get_by_label("Failed").uncheck()
        page.get_by_role("button", name="Apply").click()
        page.locator("a[data-pager=next]").first.click()
        page.wait_for_url("**cursor=**")
        assert len(row_ids_nojs(page)) == 25
    finally:
        context.close()


def row_ids_nojs(page) -> list[str]:
    return [row.get_attribute("data-id") for row in page.locator("#calls-table tr.call-row").all()]
