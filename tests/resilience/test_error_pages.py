"""The errors monitoring page and detail (staff only, htmx refresh) and the
resolve / ignore / reopen actions in the admin."""

from __future__ import annotations

from django.urls import reverse

from resilience.models import ErrorGroup
from resilience.monitoring.errors import capture_exception
from tests.resilience.test_errors import occurrence


def test_staff_see_groups_with_counts_organizations_and_state(client, staff_user):
    for n in range(3):
        capture_exception(occurrence(0, n))
    capture_exception(occurrence(8, 1))  # a message-grouped one
    client.force_login(staff_user)
    page = client.get(reverse("monitoring:errors"))
    assert page.status_code == 200
    assert "ZeroDivisionError: division by zero" in page.text
    assert "ConnectionError: provider returned &lt;n&gt; after &lt;n&gt; ms" in page.text
    group = ErrorGroup.objects.get(count=3)
    assert reverse("monitoring:error", args=[group.pk]) in page.text
    assert page["Vary"].count("HX-Request") == 1
    fragment = client.get(reverse("monitoring:errors"), headers={"HX-Request": "true"})
    assert fragment.text.lstrip().startswith('<div id="error-groups" hx-get=')
    assert 'hx-trigger="every 10s"' in fragment.text


def test_the_state_filter_shows_only_that_state(client, staff_user):
    capture_exception(occurrence(0, 1))
    capture_exception(occurrence(1, 1))
    ErrorGroup.objects.filter(title__startswith="KeyError").mark(ErrorGroup.State.RESOLVED)
    client.force_login(staff_user)
    page = client.get(reverse("monitoring:errors"), {"state": "resolved"})
    assert "KeyError" in page.text
    assert "ZeroDivisionError" not in page.text
    assert client.get(reverse("monitoring:errors"), {"state": "bogus"}).status_code == 200


def test_a_groups_detail_shows_its_scrubbed_samples(client, staff_user, rf):
    request = rf.get("/calls/?token=DETAILSECRETQX7&page=3")
    capture_exception(occurrence(2, 7), request=request)
    group = ErrorGroup.objects.get()
    client.force_login(staff_user)
    page = client.get(reverse("monitoring:error", args=[group.pk]))
    assert page.status_code == 200
    assert "parse_score" in page.text
    # The query's parameter names are kept, never their values.
    assert "&quot;token&quot;" in page.text
    assert "DETAILSECRETQX7" not in page.text
    assert client.get(reverse("monitoring:error", args=[group.pk + 1000])).status_code == 404


def test_people_who_are_not_staff_get_no_error_page(client, member):
    capture_exception(occurrence(0, 1))
    group = ErrorGroup.objects.get()
    for url in (reverse("monitoring:errors"), reverse("monitoring:error", args=[group.pk])):
        assert client.get(url).status_code == 302  # anonymous
        client.force_login(member.user)
        assert client.get(url).status_code == 302
        client.logout()


def test_staff_without_the_view_permission_get_a_403_and_with_it_the_pages(client, db):
    from django.contrib.auth.models import Permission

    from tests import factories

    capture_exception(occurrence(0, 1))
    group = ErrorGroup.objects.get()
    staff = factories.make_user(is_staff=True)
    client.force_login(staff)
    urls = (reverse("monitoring:errors"), reverse("monitoring:error", args=[group.pk]))
    assert [client.get(url).status_code for url in urls] == [403, 403]
    # Real-user timings hold no request samples: any staff member may read them.
    assert client.get(reverse("monitoring:rum")).status_code == 200
    staff.user_permissions.add(Permission.objects.get(codename="view_errorgroup", content_type__app_label="resilience"))
    client.force_login(type(staff).objects.get(pk=staff.pk))
    assert [client.get(url).status_code for url in urls] == [200, 200]


def test_the_monitoring_overview_links_to_the_errors_and_rum_pages(client, staff_user):
    client.force_login(staff_user)
    page = client.get(reverse("monitoring:overview")).text
    assert reverse("monitoring:errors") in page
    assert reverse("monitoring:rum") in page


def test_staff_resolve_ignore_and_reopen_groups_in_the_admin(client, staff_user):
    capture_exception(occurrence(0, 1))
    group = ErrorGroup.objects.get()
    client.force_login(staff_user)
    changelist = reverse("admin:resilience_errorgroup_changelist")
    assert client.get(changelist).status_code == 200
    assert client.get(reverse("admin:resilience_errorgroup_change", args=[group.pk])).status_code == 200
    for action, state in (
        ("mark_resolved", "resolved"),
        ("mark_ignored", "ignored"),
        ("mark_unresolved", "unresolved"),
    ):
        response = client.post(changelist, {"action": action, "_selected_action": [group.pk]})
        assert response.status_code == 302
        group.refresh_from_db()
        assert group.state == state
    assert client.get(reverse("admin:resilience_errorgroup_add")).status_code == 403
