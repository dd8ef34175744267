"""The organization switcher and the current organization."""

from django.urls import reverse

from tests import factories


def test_a_member_of_two_organizations_switches_between_them(client, member, call, other_org, other_org_call):
    factories.make_membership(other_org, user=member.user)
    client.force_login(member.user)
    assert call.title in client.get(reverse("calls:list")).text

    response = client.post(reverse("switch_organization"), {"organization": other_org.pk, "next": "/calls/"})
    assert response.status_code == 302
    page = client.get(reverse("calls:list")).text
    assert other_org_call.title in page
    assert call.title not in page


def test_switching_to_an_organization_you_are_not_in_is_refused(client, member, other_org, other_org_call):
    client.force_login(member.user)
    response = client.post(reverse("switch_organization"), {"organization": other_org.pk})
    assert response.status_code == 400
    assert other_org_call.title not in client.get(reverse("calls:list")).text


def test_switching_never_redirects_off_site(client, member, other_org):
    factories.make_membership(other_org, user=member.user)
    client.force_login(member.user)
    response = client.post(
        reverse("switch_organization"), {"organization": other_org.pk, "next": "https://evil.example/"}
    )
    assert response.url == reverse("calls:list")


def test_a_user_without_an_organization_is_told_so(client, db):
    user = factories.make_user()
    client.force_login(user)
    response = client.get(reverse("calls:list"))
    assert response.status_code == 403
    assert "not in an organization" in response.text
