"""The calls pages and API behind the tag-versioned cache: hits, freshness
after changes, and no tenant or principal ever served another's entry."""

from django.test import Client
from django.urls import reverse

from calls.models import Call
from calls.tenancy.models import ApiToken


def signed_in_client(membership) -> Client:
    browser = Client()
    browser.force_login(membership.user)
    return browser


def test_the_same_url_never_serves_another_organizations_cached_table(member, other_member, call, other_org_call):
    ours, theirs = signed_in_client(member), signed_in_client(other_member)
    url = reverse("calls:list")
    assert ours.get(url).headers["X-Cache"] == "MISS"
    assert ours.get(url).headers["X-Cache"] == "HIT"
    response = theirs.get(url)
    assert response.headers["X-Cache"] == "MISS"
    assert other_org_call.title in response.text
    assert call.title not in response.text


def test_the_api_cache_is_keyed_by_token_and_organization(client, member, other_member, call, other_org_call):
    _, our_token = ApiToken.issue(user=member.user, organization=member.organization, name="ours")
    _, their_token = ApiToken.issue(user=other_member.user, organization=other_member.organization, name="theirs")
    url = reverse("calls_api:list")
    for _ in range(2):
        ours = client.get(url, headers={"Authorization": f"Bearer {our_token}"})
    assert ours.headers["X-Cache"] == "HIT"
    theirs = client.get(url, headers={"Authorization": f"Bearer {their_token}"})
    assert [row["id"] for row in theirs.json()["results"]] == [other_org_call.pk]
    assert [row["id"] for row in ours.json()["results"]] == [call.pk]


def test_a_changed_call_shows_on_the_next_request_of_table_detail_and_api(
    member, call, django_capture_on_commit_callbacks
):
    browser = signed_in_client(member)
    urls = [reverse("calls:list"), call.get_absolute_url(), reverse("calls_api:detail", args=[call.pk])]
    for url in urls:
        browser.get(url)
        assert browser.get(url).headers["X-Cache"] == "HIT"
    with django_capture_on_commit_callbacks(execute=True):
        Call.objects.filter(pk=call.pk).update(title="Renamed after the cache was warm")
        call.refresh_from_db()
        call.save()
    for url in urls:
        response = browser.get(url)
        assert response.headers["X-Cache"] == "MISS", url
        assert "Renamed after the cache was warm" in response.text, url


def test_a_cached_page_answers_304_to_its_etag(member, call):
    browser = signed_in_client(member)
    first = browser.get(call.get_absolute_url())
    again = browser.get(call.get_absolute_url(), headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304


def demote_and_check(member, change, django_capture_on_commit_callbacks) -> None:
    browser = signed_in_client(member)
    url = reverse("calls:list")
    assert "Monitoring" in browser.get(url).text
    assert browser.get(url).headers["X-Cache"] == "HIT"
    with django_capture_on_commit_callbacks(execute=True):
        change(member.user)
    response = browser.get(url)
    assert response.headers["X-Cache"] == "MISS"
    assert "Monitoring" not in response.text
    assert reverse("admin:index") not in response.text


def test_a_demoted_staff_users_cached_page_loses_the_monitoring_and_admin_links(
    member, call, django_capture_on_commit_callbacks
):
    member.user.is_staff = True
    member.user.save()

    def demote(user):
        user.is_staff = False
        user.save()

    demote_and_check(member, demote, django_capture_on_commit_callbacks)


def test_a_change_of_groups_or_permissions_is_a_new_generation_for_the_user(
    member, call, django_capture_on_commit_callbacks
):
    from django.contrib.auth.models import Group, Permission

    browser = signed_in_client(member)
    url = reverse("calls:list")
    browser.get(url)
    group = Group.objects.create(name="auditors")
    for change in (
        lambda: member.user.groups.add(group),
        lambda: group.permissions.add(Permission.objects.first()),
        lambda: group.user_set.clear(),
        lambda: member.user.user_permissions.add(Permission.objects.first()),
    ):
        assert browser.get(url).headers["X-Cache"] == "HIT"
        with django_capture_on_commit_callbacks(execute=True):
            change()
        assert browser.get(url).headers["X-Cache"] == "MISS"
