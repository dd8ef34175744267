"""A real page load in Chromium measures web-vitals and its beacon reaches
the staff RUM page, under the strict CSP."""

import re

import pytest
from playwright.sync_api import expect

from resilience.monitoring import rum
from tests.e2e.conftest import sign_in
from tests.factories import make_membership

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_page_load_sends_a_beacon_that_reaches_the_rum_page(page, staff_user, org):
    make_membership(org, user=staff_user, role="manager")
    sign_in(page, staff_user.username)
    page.wait_for_url("**/calls/")
    expect(page.locator("table")).to_be_visible()
    # Leaving the page hides it: rum.js sends what web-vitals measured (a
    # beacon sent while a page unloads is not reported to Playwright, so the
    # proof is what the server stored and shows).
    page.goto("/monitoring/rum/")
    row = page.locator("#rum-table tr", has_text="/calls/")
    # Already there, or brought by the table's htmx refresh (every 10 s).
    expect(row).to_be_visible(timeout=30_000)
    expect(row.locator('td[data-metric="TTFB"]')).to_have_text(re.compile(r"^\d+ ms \(1\)$"))
    expect(row.locator('td[data-metric="FCP"]')).to_have_text(re.compile(r"^\d+ ms \(1\)$"))
    stored = {timings.route: timings for timings in rum.p75_by_route()}
    assert {"TTFB", "FCP", "LCP"} <= set(stored["calls/"].samples)
    assert page.csp_violations == []
