"""Staff use the admin's cache control in a real browser."""

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission

from tests import factories
from tests.factories import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def sign_in_to_admin(page, username):
    page.goto("/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")


@pytest.fixture
def cache_operator(staff_user):
    staff_user.user_permissions.add(Permission.objects.get(codename="control_cache"))
    return staff_user


def test_staff_invalidate_an_organizations_tag_after_confirming_and_see_it_logged(page, cache_operator, org):
    sign_in_to_admin(page, cache_operator.username)
    page.get_by_role("link", name="Cache control").click()
    page.wait_for_url("**/admin/resilience/cache/")
    assert page.get_by_text("Statistics by view").is_visible()

    page.fill("#id_tag", f"org:{org.pk}")
    page.get_by_role("button", name="Invalidate tag…").click()
    assert page.get_by_text(f"Invalidate every cache entry tagged 'org:{org.pk}'.").is_visible()
    assert not LogEntry.objects.exists()  # nothing happens before the confirmation

    page.get_by_role("button", name="Yes, I’m sure").click()
    page.wait_for_url("**/admin/resilience/cache/")
    assert page.get_by_text(f"Invalidate every cache entry tagged 'org:{org.pk}'. Done.").is_visible()
    assert LogEntry.objects.get().object_repr == "cache: Invalidate a tag"


def test_staff_without_the_permission_see_the_statistics_but_no_actions(page):
    viewer = factories.make_user(is_staff=True)
    sign_in_to_admin(page, viewer.username)
    page.goto("/admin/resilience/cache/")
    assert page.get_by_text("Statistics by view").is_visible()
    assert page.get_by_text("need the “Can invalidate, flush and warm the cache” permission").is_visible()
    assert page.get_by_role("button", name="Flush the CallIQ cache namespace…").count() == 0


def test_staff_can_back_out_of_a_flush(page, cache_operator):
    sign_in_to_admin(page, cache_operator.username)
    page.goto("/admin/resilience/cache/")
    page.get_by_role("button", name="Flush the CallIQ cache namespace…").click()
    page.get_by_role("link", name="No, take me back").click()
    page.wait_for_url("**/admin/resilience/cache/")
    assert not LogEntry.objects.exists()
