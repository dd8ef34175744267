"""Personal API tokens: stored hashed, created and revoked by their owner,
and `Authorization: Bearer` access to the JSON API."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from calls.models import Call, CallSelection
from calls.tenancy.models import ApiToken, Membership, hash_token
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


def test_leaving_the_organization_revokes_the_token_and_rejoining_does_not_revive_it(client, member, call):
    token, raw = ApiToken.issue(user=member.user, organization=member.organization, name="CRM sync")
    user, org = member.user, member.organization
    member.delete()
    token.refresh_from_db()
    assert token.is_revoked
    response = client.get(api_detail(call), headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"
    Membership.objects.create(user=user, organization=org)
    assert client.get(api_detail(call), headers={"Authorization": f"Bearer {raw}"}).status_code == 401


def test_a_bulk_membership_delete_revokes_only_that_organizations_tokens(member, other_org):
    here, _ = ApiToken.issue(user=member.user, organization=member.organization, name="here")
    factories.make_membership(other_org, user=member.user)
    elsewhere, _ = ApiToken.issue(user=member.user, organization=other_org, name="elsewhere")
    Membership.objects.filter(pk=member.pk).delete()
    here.refresh_from_db()
    elsewhere.refresh_from_db()
    assert here.is_revoked
    assert elsewhere.is_active


def test_moving_a_membership_to_another_organization_revokes_the_old_tokens(member, other_org):
    token, _ = ApiToken.issue(user=member.user, organization=member.organization, name="old org")
    member.organization = other_org
    member.save()
    token.refresh_from_db()
    assert token.is_revoked


def test_a_token_older_than_the_membership_gives_no_access_even_if_revocation_was_bypassed(client, member, call):
    # Raw SQL deletes skip signals: the token survives unrevoked, yet it belongs to the old membership.
    _, raw = ApiToken.issue(user=member.user, organization=member.organization, name="CRM sync")
    user, org = member.user, member.organization
    Membership.objects.filter(pk=member.pk)._raw_delete(Membership.objects.db)
    Membership.objects.create(user=user, organization=org, created_at=timezone.now() + timedelta(seconds=1))
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


# --- Expiry -----------------------------------------------------------------------------


def test_a_new_token_expires_after_a_year_by_default(member):
    token, _ = ApiToken.issue(user=member.user, organization=member.organization, name="CRM sync")
    assert token.expires_at == token.created_at + timedelta(days=365)


def test_an_expired_token_gets_a_401_with_a_json_error(client, member, call):
    token, raw = ApiToken.issue(
        user=member.user, organization=member.organization, name="short", lifetime=timedelta(days=7)
    )
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    response = client.get(api_detail(call), headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "token_expired"


def test_the_expiry_is_chosen_on_the_tokens_page_and_shown_in_the_list(client, member):
    client.force_login(member.user)
    response = client.post(reverse("tokens"), {"name": "quarterly export", "expires_in": "90"})
    assert response.status_code == 200
    token = ApiToken.objects.get(user=member.user)
    assert token.expires_at - token.created_at == timedelta(days=90)
    assert timezone.localtime(token.expires_at).strftime("%Y-%m-%d %H:%M") in client.get(reverse("tokens")).text


def test_a_token_that_never_expires_must_be_asked_for(client, member):
    client.force_login(member.user)
    client.post(reverse("tokens"), {"name": "forever", "expires_in": "never"})
    assert ApiToken.objects.get(user=member.user).expires_at is None


def test_an_unknown_expiry_is_a_400_and_creates_nothing(client, member):
    client.force_login(member.user)
    response = client.post(reverse("tokens"), {"name": "odd", "expires_in": "9999"})
    assert response.status_code == 400
    assert not ApiToken.objects.exists()


# --- Scope --------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete"])
def test_a_read_token_may_not_write_to_the_api(client, member, call, method):
    _, raw = ApiToken.issue(user=member.user, organization=member.organization, name="CRM sync")
    response = getattr(client, method)(api_detail(call), headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "read_only_token"
    assert Call.objects.filter(pk=call.pk).exists()


@pytest.mark.parametrize("method", ["get", "head", "options"])
def test_a_read_token_may_read(client, member, call, method):
    _, raw = ApiToken.issue(user=member.user, organization=member.organization, name="CRM sync")
    response = getattr(client, method)(api_detail(call), headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code in {200, 405}
    assert response.status_code != 403


def test_tokens_are_read_scoped_unless_asked_otherwise(member):
    token, _ = ApiToken.issue(user=member.user, organization=member.organization, name="CRM sync")
    assert token.scope == ApiToken.Scope.READ
    assert not token.allows_writes


# --- Revocation is final ------------------------------------------------------------------


def test_a_revoked_token_cannot_be_unrevoked_by_a_queryset_update(member):
    token, _ = ApiToken.issue(user=member.user, organization=member.organization, name="old")
    token.revoke()
    with pytest.raises(IntegrityError), transaction.atomic():
        ApiToken.objects.filter(pk=token.pk).update(revoked_at=None)
    token.refresh_from_db()
    assert token.is_revoked


def test_a_revoked_token_cannot_be_unrevoked_by_save(member):
    token, _ = ApiToken.issue(user=member.user, organization=member.organization, name="old")
    token.revoke()
    first_revocation = token.revoked_at
    token.revoked_at = None
    with pytest.raises(IntegrityError), transaction.atomic():
        token.save()
    token.refresh_from_db()
    assert token.revoked_at == first_revocation


def test_revoking_twice_keeps_the_first_time(member):
    token, _ = ApiToken.issue(user=member.user, organization=member.organization, name="old")
    token.revoke()
    first = token.revoked_at
    assert ApiToken.objects.filter(pk=token.pk).revoke() == 0
    token.revoke()
    token.refresh_from_db()
    assert token.revoked_at == first


def test_a_token_cannot_be_moved_to_another_user_or_organization(member, other_member, staff_user):
    token, _ = ApiToken.issue(user=member.user, organization=member.organization, name="mine")
    for change in ({"user": staff_user}, {"organization": other_member.organization}, {"token_hash": "0" * 64}):
        with pytest.raises(IntegrityError), transaction.atomic():
            ApiToken.objects.filter(pk=token.pk).update(**change)
    token.refresh_from_db()
    assert (token.user_id, token.organization_id) == (member.user_id, member.organization_id)


def test_an_expiry_cannot_be_extended_or_removed(member):
    token, _ = ApiToken.issue(user=member.user, organization=member.organization, name="mine")
    for later in (token.expires_at + timedelta(days=1), None):
        with pytest.raises(IntegrityError), transaction.atomic():
            ApiToken.objects.filter(pk=token.pk).update(expires_at=later)
    ApiToken.objects.filter(pk=token.pk).update(expires_at=token.expires_at - timedelta(days=1))


# --- A token is an API credential only ----------------------------------------------------


@pytest.fixture
def token_header(member):
    _, raw = ApiToken.issue(user=member.user, organization=member.organization, name="stolen")
    return {"Authorization": f"Bearer {raw}"}


def test_a_token_on_a_page_url_does_not_sign_in(client, token_header, call):
    response = client.get(reverse("calls:list"), headers=token_header)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert call.title not in response.text


def test_a_token_cannot_select_and_delete_calls(member, call, token_header):
    csrf_client = Client(enforce_csrf_checks=True)
    select = csrf_client.post(reverse("calls:select"), {"action": "all", "filters": ""}, headers=token_header)
    assert select.status_code in {302, 403}
    delete = csrf_client.post(reverse("calls:bulk_delete"), headers=token_header)
    assert delete.status_code in {302, 403}
    assert Call.objects.filter(pk=call.pk).exists()
    assert not CallSelection.objects.exists()


def test_a_token_cannot_mint_a_new_token(member, token_header):
    csrf_client = Client(enforce_csrf_checks=True)
    response = csrf_client.post(reverse("tokens"), {"name": "persistence"}, headers=token_header)
    assert response.status_code in {302, 403}
    assert ApiToken.objects.count() == 1


def test_a_token_cannot_upload_a_call(member, token_header):
    csrf_client = Client(enforce_csrf_checks=True)
    before = Call.objects.count()
    response = csrf_client.post(reverse("calls:upload"), {"title": "planted"}, headers=token_header)
    assert response.status_code in {302, 403}
    assert Call.objects.count() == before


def test_a_staff_users_token_does_not_open_the_admin(staff_user):
    org = factories.make_organization()
    factories.make_membership(org, user=staff_user)
    _, raw = ApiToken.issue(user=staff_user, organization=org, name="staff")
    csrf_client = Client(enforce_csrf_checks=True)
    headers = {"Authorization": f"Bearer {raw}"}
    page = csrf_client.get("/admin/", headers=headers)
    assert page.status_code == 302
    assert "/admin/login/" in page.url
    users_before = User.objects.count()
    add = csrf_client.post(
        "/admin/auth/user/add/",
        {"username": "planted", "password1": "x-Very-long-pass-1", "password2": "x-Very-long-pass-1"},
        headers=headers,
    )
    assert add.status_code in {302, 403}
    assert User.objects.count() == users_before


def test_a_signed_in_session_with_a_token_header_still_needs_csrf(member, call):
    _, raw = ApiToken.issue(user=member.user, organization=member.organization, name="CRM sync")
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(member.user)
    response = csrf_client.post(reverse("calls:bulk_delete"), headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 403
    assert Call.objects.filter(pk=call.pk).exists()


def test_a_bad_authorization_header_on_a_page_is_ignored_not_an_api_error(client, member):
    client.force_login(member.user)
    response = client.get(reverse("calls:list"), headers={"Authorization": "Basic dXNlcjpwYXNz"})
    assert response.status_code == 200


def test_deleting_a_user_or_an_organization_takes_their_tokens_with_them(member, other_member):
    ApiToken.issue(user=member.user, organization=member.organization, name="mine")
    ApiToken.issue(user=other_member.user, organization=other_member.organization, name="theirs")
    member.user.delete()
    other_member.organization.delete()
    assert not ApiToken.objects.exists()
