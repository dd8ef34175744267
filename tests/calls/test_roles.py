"""Who may do what (README, "Who may do what"): each rule of the table, tried
by the role that may and by the role that may not."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from calls.forms import filters_from_querystring
from calls.models import Call
from calls.selection import Total as ListingTotal
from calls.selection import select_all_matching, set_calls_selected
from calls.tenancy.models import ApiToken, Membership
from tests import factories

HTMX = {"HX-Request": "true"}


@pytest.fixture
def rep(org):
    return factories.make_membership(org, role=Membership.Role.REP)


@pytest.fixture
def colleague(org):
    return factories.make_membership(org, role=Membership.Role.REP)


@pytest.fixture
def admin_member(org):
    return factories.make_membership(org, role=Membership.Role.ADMIN)


@pytest.fixture
def own_calls(org, rep):
    return [factories.make_call(org, rep=rep.user, title=f"Mine {n}", outcome="") for n in range(3)]


@pytest.fixture
def colleagues_calls(org, colleague):
    return [factories.make_call(org, rep=colleague.user, title=f"Theirs {n}", outcome="") for n in range(4)]


def select_everything(membership):
    select_all_matching(
        membership.organization, membership.user, filters_from_querystring(""), ListingTotal(7, exact=True)
    )


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def outcomes(calls) -> set[str]:
    return set(Call.objects.filter(pk__in=[c.pk for c in calls]).values_list("outcome", flat=True))


# --- View and export: every member, every call of the organization --------------------


def test_a_rep_sees_a_colleagues_call(client, rep, colleagues_calls):
    client.force_login(rep.user)
    response = client.get(reverse("calls:detail", args=[colleagues_calls[0].pk]))
    assert response.status_code == 200
    assert colleagues_calls[0].title in response.text


def test_a_rep_exports_their_selection_including_colleagues_calls(client, rep, own_calls, colleagues_calls):
    client.force_login(rep.user)
    select_everything(rep)
    body = b"".join(client.post(reverse("calls:export")).streaming_content).decode()
    assert all(call.title in body for call in own_calls + colleagues_calls)


# --- Set outcome: reps their own calls, managers and admins any ------------------------


def test_a_rep_setting_the_outcome_via_select_all_changes_only_their_own_calls(
    client, rep, own_calls, colleagues_calls
):
    client.force_login(rep.user)
    select_everything(rep)
    response = client.post(reverse("calls:bulk_outcome"), {"outcome": "won", "next": "/calls/"})
    assert response.status_code == 302
    assert outcomes(own_calls) == {"won"}
    assert outcomes(colleagues_calls) == {""}
    said = messages_of(response)
    assert "Outcome set to “Won” on 3 calls." in said
    assert "4 selected calls of your colleagues were not changed: reps change only their own calls." in said


def test_a_rep_ticking_a_colleagues_call_cannot_set_its_outcome(client, rep, colleagues_calls):
    client.force_login(rep.user)
    set_calls_selected(rep.organization, rep.user, [colleagues_calls[0].pk], selected=True)
    response = client.post(reverse("calls:bulk_outcome"), {"outcome": "lost"})
    assert outcomes(colleagues_calls[:1]) == {""}
    assert "1 selected call of your colleagues was not changed: reps change only their own calls." in messages_of(
        response
    )


@pytest.mark.parametrize("role", [Membership.Role.MANAGER, Membership.Role.ADMIN])
def test_managers_and_admins_set_the_outcome_of_any_call(client, org, role, own_calls, colleagues_calls):
    boss = factories.make_membership(org, role=role)
    client.force_login(boss.user)
    select_everything(boss)
    response = client.post(reverse("calls:bulk_outcome"), {"outcome": "follow_up"})
    assert outcomes(own_calls + colleagues_calls) == {"follow_up"}
    assert messages_of(response) == ["Outcome set to “Follow-up” on 7 calls."]


# --- Delete: reps their own calls, managers and admins any -----------------------------


def test_a_rep_deleting_via_select_all_deletes_only_their_own_calls(client, rep, own_calls, colleagues_calls):
    client.force_login(rep.user)
    select_everything(rep)
    confirm = client.get(reverse("calls:bulk_delete"))
    assert "Delete 3 calls?" in confirm.text
    assert "4 selected calls of your colleagues will be left as they are" in confirm.text
    response = client.post(reverse("calls:bulk_delete"))
    assert response.status_code == 302
    assert not Call.objects.filter(pk__in=[c.pk for c in own_calls]).exists()
    assert Call.objects.filter(pk__in=[c.pk for c in colleagues_calls]).count() == 4
    assert "4 selected calls of your colleagues were not deleted: reps change only their own calls." in messages_of(
        response
    )


def test_a_rep_with_only_colleagues_calls_selected_is_offered_nothing_to_delete(client, rep, colleagues_calls):
    client.force_login(rep.user)
    set_calls_selected(rep.organization, rep.user, [colleagues_calls[0].pk], selected=True)
    confirm = client.get(reverse("calls:bulk_delete"))
    assert "No calls you may delete are selected." in confirm.text
    assert 'id="confirm-delete"' not in confirm.text


@pytest.mark.parametrize("role", [Membership.Role.MANAGER, Membership.Role.ADMIN])
def test_managers_and_admins_delete_any_call(client, org, role, own_calls, colleagues_calls, other_org_call):
    boss = factories.make_membership(org, role=role)
    client.force_login(boss.user)
    select_everything(boss)
    client.post(reverse("calls:bulk_delete"))
    assert not Call.objects.for_org(org).exists()
    assert Call.objects.filter(pk=other_org_call.pk).exists()


# --- Upload: reps as themselves, managers and admins for anyone in the organization ----


def upload(client, rep_id):
    data = {
        "title": "Planted call",
        "customer_name": "X",
        "customer_company": "Y",
        "direction": "outbound",
        "started_at": "2026-11-20T10:30",
        "rep": rep_id,
        "recording": SimpleUploadedFile("call.wav", b"RIFF....WAVEfmt a call", content_type="audio/wav"),
    }
    return client.post(reverse("calls:upload"), data)


def test_a_rep_cannot_upload_a_call_in_a_colleagues_name(client, rep, colleague):
    client.force_login(rep.user)
    response = upload(client, colleague.user.pk)
    assert response.status_code == 400
    assert "Select a valid choice" in response.text
    assert not Call.objects.filter(title="Planted call").exists()


def test_the_upload_form_offers_a_rep_only_themselves_and_a_manager_everyone(client, member, rep, colleague):
    client.force_login(rep.user)
    rep_choices = client.get(reverse("calls:upload")).context["form"].fields["rep"].queryset
    assert list(rep_choices) == [rep.user]
    client.force_login(member.user)
    manager_choices = set(client.get(reverse("calls:upload")).context["form"].fields["rep"].queryset)
    assert {rep.user, colleague.user, member.user} <= manager_choices


# --- Tokens: every member, their own -------------------------------------------------------


def test_a_rep_manages_their_own_tokens_and_nobody_elses(client, rep, colleague):
    client.force_login(rep.user)
    assert client.post(reverse("tokens"), {"name": "my script"}).status_code == 200
    theirs, _ = ApiToken.issue(user=colleague.user, organization=colleague.organization, name="theirs")
    assert client.post(reverse("token_revoke", args=[theirs.pk])).status_code == 404
    theirs.refresh_from_db()
    assert theirs.is_active
    assert "theirs" not in client.get(reverse("tokens")).text


# --- Business metrics, monitoring, admin: CallIQ staff only ---------------------------------


@pytest.mark.parametrize("role", [Membership.Role.REP, Membership.Role.MANAGER, Membership.Role.ADMIN])
def test_no_organization_role_sees_business_metrics_monitoring_or_the_admin(client, org, role):
    someone = factories.make_membership(org, role=role)
    client.force_login(someone.user)
    assert client.get(reverse("analytics:business")).status_code == 403
    assert client.get(reverse("monitoring:overview")).status_code == 302
    assert client.get("/admin/").status_code == 302


def test_staff_see_business_metrics_and_monitoring(client, staff_user):
    client.force_login(staff_user)
    assert client.get(reverse("analytics:business")).status_code == 200
    assert client.get(reverse("monitoring:overview")).status_code == 200
    assert client.get("/admin/").status_code == 200
