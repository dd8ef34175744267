"""The usage page in a real browser: the plan in the navigation, the minutes
against the plan, an over-limit upload refused on the page; no CSP violation."""

from playwright.sync_api import Page, expect

from calls.billing.models import BillingAccount
from calls.tenancy.models import Membership
from tests import factories
from tests.e2e.conftest import sign_in


def test_an_admin_sees_usage_and_plan_and_an_over_limit_upload_is_refused(page: Page, org):
    admin = factories.make_membership(org, role=Membership.Role.ADMIN)
    factories.make_call(org, duration_seconds=61 * 60, rep=admin.user)
    sign_in(page, admin.user.username)
    expect(page.get_by_test_id("plan-badge")).to_have_text("Free")
    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    expect(page.get_by_test_id("minutes-used")).to_have_text("61")
    expect(page.get_by_test_id("minutes-included")).to_have_text("60")
    expect(page.get_by_role("alert")).to_contain_text("minutes are used up")
    expect(page.get_by_test_id("subscription-status")).to_have_text("none")
    page.screenshot(path="/tmp/billing_usage.png", full_page=True)

    page.goto("/calls/upload/")
    expect(page.get_by_role("status").first).to_contain_text("has used 61 of the 60 minutes")
    page.fill("#id_title", "One more call")
    page.set_input_files(
        "#id_recording",
        files=[{"name": "call.wav", "mimeType": "audio/wav", "buffer": b"RIFF....WAVEfmt a sales call"}],
    )
    page.fill("#id_started_at", "2026-11-20T10:30")
    page.get_by_role("button", name="Upload and analyse").click()
    expect(page.get_by_role("alert").first).to_contain_text("An admin of your organization can upgrade the plan")
    assert not BillingAccount.objects.exists()
    assert page.csp_violations == []
