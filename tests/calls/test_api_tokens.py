"""Personal API tokens: stored hashed, created and revoked by their owner,
and `Authorization: Bearer` access to the JSON API."""

from django.urls import reverse

from calls.tenancy.models import ApiToken, hash_token
from tests import factories


def api_detail(call):
    return reverse("calls_api:detail", args=[call.pk])


def test_a_valid_token_reads_its_organizations_call(client, member, call):
    _, raw = ApiToken.issue(user=member.user, organization=member.organization, name="CRM sync")
    response = client.get(api_detail(call), headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200
    assert response.json()["id"] == call.pk


def test_only_the_tokens_hash_is_stored(member):
    token, raw = ApiToken.issue(user=member.user, organization=member.organization, name="CRM sync")
    token.refresh_from_db()
    assert raw not in {token.token_hash, token.prefix, token.name}
    assert token.token_hash == hash_token(raw)
    assert raw.startswith(token.prefix)


def test_a_revoked_token_gets_a_401_with_a_json_error(client, member, call):
    token, raw = ApiToken.issue(user=member.user, organization=member.organization, name="old")
    token.revoke()
    response = client.get(api_detail(call), headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


def test_an_unknown_token_gets_a_401(client, call):
    response = client.get(api_detail(call), headers={"Authorization": "Bearer ciq_not-a-real-token"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


def test_a_malformed_authorization_header_gets_a_401_with_a_json_error(client, call):
    for header in ["Token abc", "Bearer", "Bearer a b", "Basic dXNlcjpwYXNz"]:
        response = client.get(api_detail(call), headers={"Authorization": header})
        assert response.status_code == 401, header
        assert response.json()["error"]["code"] == "invalid_authorization", header


def test_a_token_never_reaches_another_organizations_call(client, member, other_org_call):
    _, raw = ApiToken.issue(user=member.user, organization=member.organization, name="CRM sync")
    response = client.get(api_detail(other_org_call), headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 404
    assert "Globex" not in response.text


def test_a_token_for_an_organization_the_user_left_gives_no_access(client, member, call):
    _, raw = ApiToken.issue(user=member.user, organization=member.organization, name="CRM sync")
    member.delete()
    response = client.get(api_detail(call), headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "no_organization"


def test_without_credentials_the_api_answers_401_not_a_login_redirect(client, call):
    response = client.get(api_detail(call))
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_member_creates_a_token_and_sees_it_once(client, member):
    client.force_login(member.user)
    response = client.post(reverse("tokens"), {"name": "CRM sync"})
    assert response.status_code == 200
    token = ApiToken.objects.get(user=member.user)
    raw = response.context["new_token"]
    assert token.token_hash == hash_token(raw)
    assert raw in response.text
    assert response["Cache-Control"] == "no-store"
    assert raw not in client.get(reverse("tokens")).text


def test_a_token_without_a_name_is_a_400_with_the_field_error(client, member):
    client.force_login(member.user)
    response = client.post(reverse("tokens"), {"name": ""})
    assert response.status_code == 400
    assert "This field is required." in response.text
    assert not ApiToken.objects.exists()


def test_a_member_revokes_their_token(client, member):
    token, _ = ApiToken.issue(user=member.user, organization=member.organization, name="old")
    client.force_login(member.user)
    response = client.post(reverse("token_revoke", args=[token.pk]))
    assert response.status_code == 302
    token.refresh_from_db()
    assert not token.is_active


def test_nobody_revokes_another_users_token(client, member):
    stranger = factories.make_membership(member.organization)
    token, _ = ApiToken.issue(user=stranger.user, organization=member.organization, name="theirs")
    client.force_login(member.user)
    assert client.post(reverse("token_revoke", args=[token.pk])).status_code == 404
    token.refresh_from_db()
    assert token.is_active
