"""The analytics page as a manager uses it, in a real browser."""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests import factories
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def calls_this_month(org, member):
    now = timezone.now()
    return [
        factories.make_call(org, rep=member.user, started_at=now - timedelta(days=2), outcome="won"),
        factories.make_call(org, rep=member.user, started_at=now - timedelta(days=20), outcome="lost"),
    ]


def kpi_calls(page) -> str:
    return page.locator('[data-kpi="calls"] .kpi-value').inner_text()


def test_changing_the_range_updates_the_charts_and_the_url(page, member, calls_this_month):
    sign_in(page, member.user.username)
    page.wait_for_url("**/calls/")
    page.goto("/analytics/")
    assert kpi_calls(page) == "2"
    day_rows = page.locator("#chart-calls-per-day tbody tr")
    assert day_rows.count() == 30

    page.select_option("#id_days", "7")
    page.wait_for_url("**/analytics/?days=7**")
    assert page.url.endswith("/analytics/?days=7")  # empty filters are left out of the shared URL
    page.wait_for_function("document.querySelectorAll('#chart-calls-per-day tbody tr').length === 7")
    assert kpi_calls(page) == "1"
    expect(page.locator("#range-label")).to_contain_text("(7 days)")
    assert page.locator("#chart-calls-per-day svg rect.bar").count() == 1

    page.select_option("#id_outcome", "lost")
    page.wait_for_url("**outcome=lost**")
    page.wait_for_function("document.querySelector('[data-kpi=\"calls\"] .kpi-value').textContent.trim() === '0'")

    page.go_back()
    page.wait_for_url("**/analytics/?days=7**")
    page.wait_for_function("document.querySelector('[data-kpi=\"calls\"] .kpi-value').textContent.trim() === '1'")
    assert page.csp_violations == []


def test_show_as_table_reveals_the_numbers_behind_a_chart(page, member, calls_this_month):
    sign_in(page, member.user.username)
    page.wait_for_url("**/calls/")
    page.goto("/analytics/?days=7")
    table = page.locator("#chart-sentiment-distribution table")
    assert not table.is_visible()
    page.locator("#chart-sentiment-distribution summary").click()
    expect(table).to_be_visible()
    assert table.locator("tbody tr").count() == 5
    assert page.get_by_role("heading", name="Sentiment distribution").is_visible()
    assert page.csp_violations == []


def test_a_reversed_custom_range_shows_the_error_in_place(page, member, calls_this_month):
    sign_in(page, member.user.username)
    page.wait_for_url("**/calls/")
    page.goto("/analytics/?from=2026-03-01&to=2026-03-10")
    page.fill("#id_to", "2026-02-01")
    page.locator("#id_to").dispatch_event("change")
    expect(page.get_by_role("alert").filter(has_text="must be on or after")).to_be_visible()
    assert "to=2026-02-01" in page.url
    assert page.csp_violations == []
