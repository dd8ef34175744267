"""Tenancy: a member sees only their organization's calls."""

from django.urls import reverse

from calls.models import Call


def test_call_list_never_shows_another_orgs_calls(client, member, call, other_org_call):
    client.force_login(member.user)
    response = client.get(reverse("calls:list"))
    assert response.status_code == 200
    assert call.title in response.text
    assert other_org_call.title not in response.text


def test_another_orgs_call_detail_is_a_404(client, member, other_org_call):
    client.force_login(member.user)
    response = client.get(reverse("calls:detail", args=[other_org_call.pk]))
    assert response.status_code == 404
    assert other_org_call.title not in response.text


def test_queryset_scoping_returns_only_the_orgs_calls(org, call, other_org_call):
    assert list(Call.objects.for_org(org)) == [call]


def test_signed_out_visitor_is_sent_to_sign_in(client, db):
    response = client.get(reverse("calls:list"))
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
