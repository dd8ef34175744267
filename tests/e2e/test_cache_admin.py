"""Staff use the admin's cache control in a real browser."""

import pytest
from django.contrib.admin.models import LogEntry

from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def sign_in_to_admin(page, username):
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


def test_staff_invalidate_an_organization_after_confirming_and_see_it_logged(page, staff_user, org):
    sign_in_to_admin(page, staff_user.username)
    page.get_by_role("link", name="Cache control").click()
    page.wait_for_url("**/admin/resilience/cache/")
    assert page.get_by_text("Statistics by view").is_visible()

    page.select_option("#id_org", label="Acme Sales (acme)")
    page.get_by_role("button", name="Invalidate organization…").click()
    assert page.get_by_text("Invalidate every cached page of Acme Sales.").is_visible()
    assert not LogEntry.objects.exists()  # nothing happens before the confirmation

    page.get_by_role("button", name="Yes, I’m sure").click()
    page.wait_for_url("**/admin/resilience/cache/")
    assert page.get_by_text("Invalidate every cached page of Acme Sales. Done.").is_visible()
    assert LogEntry.objects.get().object_repr == "cache: Invalidate an organization (Acme Sales)"


def test_staff_can_back_out_of_a_flush(page, staff_user):
    sign_in_to_admin(page, staff_user.username)
    page.goto("/admin/resilience/cache/")
    page.get_by_role("button", name="Flush the CallIQ cache namespace…").click()
    page.get_by_role("link", name="No, take me back").click()
    page.wait_for_url("**/admin/resilience/cache/")
    assert not LogEntry.objects.exists()
