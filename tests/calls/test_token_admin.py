"""The API token admin: read-only, a one-way revoke action, the secret never shown."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from calls.tenancy.models import ApiToken
from tests import factories


@pytest.fixture
def token(member):
    token, _raw = ApiToken.issue(user=member.user, organization=member.organization, name="CRM sync")
    return token


def staff_with(*codenames: str):
    user = factories.make_user(is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="calls", codename__in=codenames))
    return user


CHANGE_URL = "admin:calls_apitoken_change"
LIST_URL = "admin:calls_apitoken_changelist"


def test_staff_with_every_token_permission_cannot_repoint_or_unrevoke_a_token(client, member, token, staff_user):
    token.revoke()
    revoked_at = token.revoked_at
    client.force_login(staff_with("view_apitoken", "change_apitoken", "delete_apitoken", "add_apitoken"))
    page = client.get(reverse(CHANGE_URL, args=[token.pk]))
    assert page.status_code == 200
    assert 'name="user"' not in page.text
    assert 'name="revoked_at_0"' not in page.text
    response = client.post(
        reverse(CHANGE_URL, args=[token.pk]),
        {"user": staff_user.pk, "organization": token.organization_id, "name": "mine now", "revoked_at_0": ""},
    )
    assert response.status_code == 403
    token.refresh_from_db()
    assert (token.user_id, token.name, token.revoked_at) == (member.user_id, "CRM sync", revoked_at)


def test_nobody_adds_or_deletes_a_token_in_the_admin(client, token, staff_user):
    client.force_login(staff_user)
    assert client.get(reverse("admin:calls_apitoken_add")).status_code == 403
    assert client.post(reverse("admin:calls_apitoken_delete", args=[token.pk]), {"post": "yes"}).status_code == 403
    assert ApiToken.objects.filter(pk=token.pk).exists()


def test_the_secret_and_its_hash_are_never_shown(client, member, staff_user):
    token, raw = ApiToken.issue(user=member.user, organization=member.organization, name="CRM sync")
    client.force_login(staff_user)
    for url in (reverse(LIST_URL), reverse(CHANGE_URL, args=[token.pk])):
        html = client.get(url).text
        assert raw not in html
        assert token.token_hash not in html
        assert token.prefix in html


def test_the_revoke_action_revokes_the_selected_tokens(client, member, token, staff_user):
    other, _ = ApiToken.issue(user=member.user, organization=member.organization, name="kept")
    client.force_login(staff_user)
    response = client.post(reverse(LIST_URL), {"action": "revoke_tokens", "_selected_action": [token.pk]})
    assert response.status_code == 302
    token.refresh_from_db()
    other.refresh_from_db()
    assert token.is_revoked
    assert other.is_active


def test_the_revoke_action_needs_its_own_permission(client, token):
    client.force_login(staff_with("view_apitoken", "change_apitoken"))
    changelist = client.get(reverse(LIST_URL))
    assert changelist.status_code == 200
    assert "revoke_tokens" not in changelist.text
    client.post(reverse(LIST_URL), {"action": "revoke_tokens", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.is_active
    client.force_login(staff_with("view_apitoken", "revoke_apitoken"))
    client.post(reverse(LIST_URL), {"action": "revoke_tokens", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.is_revoked
