"""Cache control in the admin site: staff see it; actions need the
resilience.control_cache permission, POST + CSRF + confirmation, logged."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.test import Client

from resilience.cache import cache_service
from tests import factories
from tests.resilience import cache_fixtures, cache_urls

fresh_cache_state = cache_fixtures.fresh_cache_state

pytestmark = pytest.mark.urls("tests.resilience.cache_urls")

PAGE = "/admin/resilience/cache/"
ACTION = "/admin/resilience/cache/action/"
TABLE = "/cache-test/calls/"


@pytest.fixture
def staff(client, staff_user):
    staff_user.user_permissions.add(Permission.objects.get(codename="control_cache"))
    client.force_login(staff_user)
    return client


@pytest.fixture
def warm_reader(member, call):
    reader = Client()
    reader.force_login(member.user)
    assert reader.get(TABLE)["X-Cache"] == "MISS"
    assert reader.get(TABLE)["X-Cache"] == "HIT"
    return reader


def test_staff_see_statistics_key_count_and_redis_memory(staff, warm_reader):
    response = staff.get(PAGE)
    assert response.status_code == 200
    assert "tests.resilience.cache_urls.call_table" in response.text
    assert "Keys in our namespace" in response.text
    assert "Redis memory used" in response.text


def test_the_admin_index_links_to_cache_control(staff):
    assert PAGE in staff.get("/admin/").text


def test_non_staff_members_get_no_access_and_cannot_act(warm_reader, org):
    outsider = Client()
    outsider.force_login(factories.make_membership(org).user)
    assert outsider.get(PAGE).status_code == 302
    response = outsider.post(ACTION, {"action": "invalidate_tag", "tag": f"org:{org.pk}", "confirm": "yes"})
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]
    assert warm_reader.get(TABLE)["X-Cache"] == "HIT"
    assert not LogEntry.objects.exists()


def test_an_action_asks_for_confirmation_before_doing_anything(staff, warm_reader, org):
    response = staff.post(ACTION, {"action": "invalidate_tag", "tag": f"org:{org.pk}"})
    assert response.status_code == 200
    assert "Yes, I’m sure" in response.text
    assert warm_reader.get(TABLE)["X-Cache"] == "HIT"
    assert not LogEntry.objects.exists()


def test_invalidating_a_tag_is_done_and_logged(staff, staff_user, warm_reader, org):
    response = staff.post(ACTION, {"action": "invalidate_tag", "tag": f"org:{org.pk}", "confirm": "yes"})
    assert response.status_code == 302
    assert warm_reader.get(TABLE)["X-Cache"] == "MISS"
    entry = LogEntry.objects.get()
    assert entry.user == staff_user
    assert f"org:{org.pk}" in entry.change_message


@pytest.mark.parametrize(
    "action", [{"action": "flush"}, {"action": "warm"}, {"action": "invalidate_tag", "tag": "org:1"}]
)
def test_staff_without_the_cache_permission_get_403_and_nothing_happens(client, org, warm_reader, action):
    viewer = factories.make_membership(org).user
    viewer.is_staff = True
    viewer.save()
    client.force_login(viewer)
    assert client.get(PAGE).status_code == 200  # may look
    assert "need the" in client.get(PAGE).text
    cache_urls.computations.clear()
    response = client.post(ACTION, {**action, "organization": org.pk, "confirm": "yes"})
    assert response.status_code == 403
    assert warm_reader.get(TABLE)["X-Cache"] == "HIT"
    assert not LogEntry.objects.exists()


def test_flushing_drops_our_entries_only(staff, warm_reader):
    foreign = cache_service().client
    foreign.set("not-ours", "kept")
    response = staff.post(ACTION, {"action": "flush", "confirm": "yes"}, follow=True)
    assert "1 entries removed" in response.text
    assert foreign.get("not-ours") == b"kept"
    assert warm_reader.get(TABLE)["X-Cache"] == "MISS"
    assert "Flush" in LogEntry.objects.get().object_repr


def test_warm_now_queues_the_warming_task_and_logs_it(staff, member, org, call):
    cache_urls.computations.clear()
    response = staff.post(ACTION, {"action": "warm", "scope": org.slug, "confirm": "yes"}, follow=True)
    assert "Queued." in response.text
    assert "Warm now" in LogEntry.objects.get().object_repr


def test_bad_input_gets_a_400_with_a_message(staff):
    assert "without spaces" in staff.post(ACTION, {"action": "invalidate_tag", "tag": "two words"}).text
    assert staff.post(ACTION, {"action": "invalidate_tag", "tag": ""}).status_code == 400
    assert "No organization with slug" in staff.post(ACTION, {"action": "warm", "scope": "nope"}).text
    assert staff.post(ACTION, {"action": "warm", "area": "nonsense"}).status_code == 400
    assert staff.post(ACTION, {"action": "drop_everything"}).status_code == 400


def test_actions_without_a_csrf_token_are_refused(staff_user, warm_reader, org):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_user)
    response = strict.post(ACTION, {"action": "invalidate_tag", "tag": f"org:{org.pk}", "confirm": "yes"})
    assert response.status_code == 403
    assert warm_reader.get(TABLE)["X-Cache"] == "HIT"
