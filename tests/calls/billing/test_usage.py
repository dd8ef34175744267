"""Minutes used against the plan: the usage page (members of the organization
only) and the upload refused once the plan's minutes are used."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from calls.billing.models import BillingAccount
from calls.billing.usage import billing_period, current_usage, upload_refusal
from calls.models import Call
from calls.tenancy.models import ApiToken, Membership
from tests import factories


@pytest.fixture
def media(tmp_path):
    with override_settings(MEDIA_ROOT=tmp_path):
        yield tmp_path


def minutes_of_calls(org, minutes: int, **fields) -> None:
    factories.make_call(org, duration_seconds=minutes * 60, **fields)


def subscribe(org, plan="team", status="active", days_into_period=3) -> BillingAccount:
    start = timezone.now() - timedelta(days=days_into_period)
    return BillingAccount.objects.create(
        organization=org,
        plan=plan,
        status=status,
        paddle_subscription_id="sub_usage",
        period_starts_at=start,
        period_ends_at=start + timedelta(days=30),
    )


def test_a_free_organization_counts_this_calendar_months_uploads(org, other_org):
    minutes_of_calls(org, 20)
    minutes_of_calls(org, 15)
    last_month = billing_period(BillingAccount(organization=org))[0] - timedelta(hours=1)
    minutes_of_calls(org, 500, created_at=last_month)
    minutes_of_calls(other_org, 500)
    usage = current_usage(org)
    assert (usage.plan.key, usage.minutes_used, usage.minutes_included, usage.minutes_left) == ("free", 35, 60, 25)
    assert not usage.over_limit


def test_a_subscription_counts_its_own_billing_period(org):
    account = subscribe(org, days_into_period=3)
    minutes_of_calls(org, 100, created_at=account.period_starts_at + timedelta(hours=1))
    minutes_of_calls(org, 400, created_at=account.period_starts_at - timedelta(hours=1))
    usage = current_usage(org)
    assert (usage.period_start, usage.period_end) == (account.period_starts_at, account.period_ends_at)
    assert (usage.plan.key, usage.minutes_used, usage.minutes_included) == ("team", 100, 3000)


def test_a_canceled_subscription_falls_back_to_the_free_plan_and_the_calendar_month(org):
    subscribe(org, status="canceled")
    usage = current_usage(org)
    assert usage.plan.key == "free"
    assert timezone.localtime(usage.period_start).day == 1


def test_the_calendar_month_is_the_local_month(org, settings):
    settings.TIME_ZONE = "America/New_York"
    with timezone.override("America/New_York"):
        start, end = billing_period(BillingAccount(organization=org), datetime(2026, 3, 1, 3, 0, tzinfo=UTC))
    # 03:00 UTC on 1 March is still February in New York.
    assert (start.isoformat(), end.isoformat()) == ("2026-02-01T00:00:00-05:00", "2026-03-01T00:00:00-05:00")


def test_the_usage_page_shows_the_numbers_to_a_member(client, org, member):
    minutes_of_calls(org, 42)
    client.force_login(member.user)
    response = client.get(reverse("billing:usage"))
    assert response.status_code == 200
    html = response.text
    assert 'data-testid="minutes-used">42<' in html
    assert 'data-testid="minutes-included">60<' in html
    assert "Free plan" in html
    assert 'data-testid="plan-badge">Free<' in html
    assert "Billing details" not in html  # a manager is not an admin


def test_admins_also_see_the_subscription_details(client, org):
    subscribe(org, plan="business", status="past_due")
    admin = factories.make_membership(org, role=Membership.Role.ADMIN)
    client.force_login(admin.user)
    html = client.get(reverse("billing:usage")).text
    assert "Billing details" in html
    assert "sub_usage" in html
    assert "Business plan" in html
    assert "The last payment failed" in html


def test_another_organizations_member_sees_only_their_own_usage(client, org, other_member):
    minutes_of_calls(org, 55)
    subscribe(org, plan="business")
    client.force_login(other_member.user)
    html = client.get(reverse("billing:usage")).text
    assert 'data-testid="minutes-used">0<' in html
    assert "Free plan" in html
    assert "Business" not in html.split('<h2 id="plans-heading">')[0]


def test_the_usage_page_is_for_signed_in_members_only(client, org, member):
    response = client.get(reverse("billing:usage"))
    assert response.status_code == 302
    assert reverse("login") in response.url
    _, raw = ApiToken.issue(user=member.user, organization=org, name="script")
    with_token = client.get(reverse("billing:usage"), headers={"Authorization": f"Bearer {raw}"})
    assert with_token.status_code in (302, 401, 403)  # tokens are for /api/ only
    assert "minutes-used" not in with_token.text
    loner = factories.make_user()
    client.force_login(loner)
    assert client.get(reverse("billing:usage")).status_code == 403


def upload(client, member):
    data = {
        "title": "Over the limit",
        "customer_name": "Peter Gibbons",
        "customer_company": "Initech",
        "direction": "outbound",
        "started_at": "2026-11-20T10:30",
        "rep": member.user.pk,
        "recording": SimpleUploadedFile("call.wav", b"RIFF....WAVEfmt a sales call", content_type="audio/wav"),
    }
    return client.post(reverse("calls:upload"), data)


def test_an_upload_over_the_plans_minutes_is_refused_with_a_message_and_nothing_is_stored(client, org, member, media):
    minutes_of_calls(org, 60, title="Earlier call")
    client.force_login(member.user)
    assert "has used 60 of the 60 minutes" in client.get(reverse("calls:upload")).text  # said before uploading
    response = upload(client, member)
    assert response.status_code == 400
    assert "has used 60 of the 60 minutes its Free plan includes" in response.text
    assert "An admin of your organization can upgrade the plan" in response.text
    assert reverse("billing:usage") in response.text
    assert not Call.objects.filter(title="Over the limit").exists()
    assert not [p for p in media.rglob("*") if p.is_file()]


def test_the_upload_that_crosses_the_limit_is_allowed(client, org, member, media):
    minutes_of_calls(org, 59)
    client.force_login(member.user)
    response = upload(client, member)
    assert response.status_code == 302
    assert Call.objects.filter(title="Over the limit").exists()


def test_a_bigger_plan_lifts_the_refusal(org):
    minutes_of_calls(org, 61)
    assert upload_refusal(org) is not None
    subscribe(org, plan="team", days_into_period=0)
    assert upload_refusal(org) is None
