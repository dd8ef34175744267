"""A person signs in through the real page in a real browser."""

import pytest

from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_signing_in_lands_on_the_calls_page_with_the_orgs_calls(page, member, call, other_org_call):
    sign_in(page, member.user.username)
    page.wait_for_url("**/calls/")
    assert page.locator("h1").first.inner_text() == "Calls"
    assert page.get_by_text(call.title).is_visible()
    assert page.get_by_text(other_org_call.title).count() == 0
    assert page.csp_violations == []


def test_a_wrong_password_stays_on_sign_in_with_a_message(page, member):
    sign_in(page, member.user.username, password="not-the-password")
    assert "/accounts/login/" in page.url
    assert page.get_by_role("alert").is_visible()


def test_signing_out_shows_the_signed_out_page(page, member):
    sign_in(page, member.user.username)
    page.wait_for_url("**/calls/")
    page.get_by_role("button", name="Sign out").click()
    assert page.get_by_text("You have been signed out.").is_visible()


def test_signing_out_from_a_cached_page_posts_the_cookies_csrf_token(page, member, call):
    # The cached page carries a blank csrfmiddlewaretoken; static/js/csrf.js fills it on submit.
    sign_in(page, member.user.username)
    page.wait_for_url("**/calls/")
    # Routing turns Chromium's HTTP cache off: else it revalidates (304) and
    # shows its own copy of the first response, token included.
    page.route("**/*", lambda route: route.continue_())
    response = page.goto("/calls/")
    assert (response.status, response.headers["x-cache"]) == (200, "HIT")
    assert page.locator('header form.inline-form input[name="csrfmiddlewaretoken"]').get_attribute("value") == ""
    page.get_by_role("button", name="Sign out").click()
    assert page.get_by_text("You have been signed out.").is_visible()
