"""Sign-in throttling in a real browser: the lockout page after too many
wrong passwords, in the sign-in style, with no CSP violation."""

import pytest

from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_five_wrong_passwords_show_the_lockout_page_and_the_right_one_is_refused(page, member):
    for _ in range(5):
        sign_in(page, member.user.username, password="not-the-password")
    alert = page.get_by_role("alert")
    assert "Too many failed sign-in attempts." in alert.inner_text()
    assert "Try again in 15 minutes." in alert.inner_text()
    assert page.locator("body.auth-page").count() == 1
    sign_in(page, member.user.username)
    assert "/accounts/login/" in page.url
    assert page.get_by_text("Too many failed sign-in attempts.").is_visible()
    assert page.csp_violations == []
