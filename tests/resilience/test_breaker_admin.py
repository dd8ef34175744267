"""The breakers page in the admin, used through Django's test client as a
person would: live state, force open / force closed / reset behind a
confirmation page (POST, CSRF, admin log), transition history, staff only."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.test import Client
from django.urls import reverse

from resilience.breaker import CircuitOpenError, breaker
from resilience.models import BreakerPolicy
from tests import factories

CHANGELIST = "admin:resilience_breakerpolicy_changelist"


def action_url(service: str, action: str) -> str:
    policy = BreakerPolicy.objects.get(service=service)
    return reverse("admin:resilience_breakerpolicy_action", args=[policy.pk, action])


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client


def trip(service: str) -> None:
    for _ in range(5):
        with pytest.raises(RuntimeError):
            breaker(service).call(lambda: (_ for _ in ()).throw(RuntimeError("down")))


def test_the_breakers_page_lists_the_four_services_with_live_state(staff_client, fast_policy):
    fast_policy("openai", open_seconds=60)
    trip("openai")
    response = staff_client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    text = response.text
    for service in ["assemblyai", "openai", "paddle", "resend"]:
        assert f">{service}</a>" in text
    assert "OPEN" in text
    assert "100% of 5 (60 s)" in text
    assert "opened " in text
    assert "Force open" in text
    assert "Transition history" in text


def test_the_confirmation_page_explains_the_action_and_posts_with_a_csrf_token(staff_client):
    response = staff_client.get(action_url("openai", "open"))
    assert response.status_code == 200
    assert 'method="post"' in response.text
    assert "csrfmiddlewaretoken" in response.text
    assert "Every call to this service is refused" in response.text
    assert breaker("openai").snapshot().shown_state == "closed"  # a GET changes nothing


def test_force_open_refuses_calls_and_is_recorded_in_the_admin_log(staff_client, staff_user):
    response = staff_client.post(action_url("openai", "open"))
    assert response.status_code == 302
    assert response.url == reverse(CHANGELIST)
    assert breaker("openai").snapshot().shown_state == "forced_open"
    with pytest.raises(CircuitOpenError):
        breaker("openai").call(lambda: "never runs")
    entry = LogEntry.objects.get(user=staff_user)
    assert entry.action_flag == CHANGE
    assert entry.object_repr == "openai"
    assert "forced open" in entry.get_change_message()


def test_force_closed_disables_the_breaker_and_reset_restores_it(staff_client, fast_policy):
    fast_policy("resend", open_seconds=60)
    staff_client.post(action_url("resend", "closed"))
    trip("resend")
    trip("resend")
    assert breaker("resend").snapshot().shown_state == "forced_closed"
    staff_client.post(action_url("resend", "reset"))
    snap = breaker("resend").snapshot()
    assert (snap.shown_state, snap.consecutive_failures) == ("closed", 0)
    assert BreakerPolicy.objects.get(service="resend").forced_state == ""
    assert LogEntry.objects.count() == 2


def test_the_policy_page_shows_the_transition_history(staff_client, fast_policy):
    fast_policy("paddle", open_seconds=60)
    trip("paddle")
    staff_client.post(action_url("paddle", "reset"))
    policy = BreakerPolicy.objects.get(service="paddle")
    response = staff_client.get(reverse("admin:resilience_breakerpolicy_change", args=[policy.pk]))
    assert response.status_code == 200
    assert "5 consecutive failures (last: error)" in response.text
    assert "reset by" in response.text
    history = staff_client.get(reverse("admin:resilience_breakerevent_changelist"))
    assert history.status_code == 200
    assert "5 consecutive failures" in history.text


def test_editing_a_policy_in_the_admin_changes_the_breaker_at_once(staff_client):
    policy = BreakerPolicy.objects.get(service="openai")
    data = {
        "failure_threshold": 2,
        "error_rate_threshold": 50,
        "window_seconds": 60,
        "minimum_calls": 10,
        "open_seconds": 60,
        "open_backoff_multiplier": 1,
        "max_open_seconds": 600,
        "half_open_max_calls": 1,
        "call_timeout_seconds": 30,
        "slow_call_seconds": "",
        "count_timeouts": "on",
        "count_connection_errors": "on",
        "count_server_errors": "on",
        "count_rate_limits": "on",
    }
    response = staff_client.post(reverse("admin:resilience_breakerpolicy_change", args=[policy.pk]), data)
    assert response.status_code == 302
    for _ in range(2):
        with pytest.raises(RuntimeError):
            breaker("openai").call(lambda: (_ for _ in ()).throw(RuntimeError("down")))
    assert breaker("openai").snapshot().state == "open"


def test_a_bad_policy_value_is_a_form_error_not_a_500(staff_client):
    policy = BreakerPolicy.objects.get(service="openai")
    response = staff_client.post(
        reverse("admin:resilience_breakerpolicy_change", args=[policy.pk]),
        {"failure_threshold": 0, "error_rate_threshold": 150, "window_seconds": 60, "minimum_calls": 10},
    )
    assert response.status_code == 200
    assert "errornote" in response.text
    assert BreakerPolicy.objects.get(service="openai").failure_threshold == 5


def test_an_unknown_action_is_a_404(staff_client):
    assert staff_client.post(action_url("openai", "explode")).status_code == 404


def test_actions_need_a_csrf_token(staff_user):
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    response = client.post(action_url("openai", "open"))
    assert response.status_code == 403
    assert breaker("openai").snapshot().shown_state == "closed"


def test_people_who_are_not_staff_get_no_access(client, member):
    client.force_login(member.user)
    for url in [reverse(CHANGELIST), action_url("openai", "open")]:
        assert client.get(url).status_code == 302
    response = client.post(action_url("openai", "open"))
    assert response.status_code == 302
    assert reverse("admin:login") in response.url
    assert breaker("openai").snapshot().shown_state == "closed"
    assert not LogEntry.objects.exists()


def test_staff_without_the_change_permission_cannot_force_a_breaker(client, db):
    viewer = factories.make_user(is_staff=True)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(Permission.objects.get(codename="view_breakerpolicy"))
    client.force_login(viewer)
    assert client.get(reverse(CHANGELIST)).status_code == 200
    assert client.post(action_url("openai", "open")).status_code == 403
    assert breaker("openai").snapshot().shown_state == "closed"
