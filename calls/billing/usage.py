"""Minutes used against the plan: the billing period, the sum of the calls'
durations in it, and the upload refusal.

Usage counts the calls uploaded (created) in the period, by the duration
transcription measured: a call is charged to the period it was uploaded in,
whenever it took place. The period is the live subscription's
current_billing_period, else (free plan, canceled, paused, or a period that
ended before Paddle's renewal event arrived) the calendar month in
CALLIQ_TIME_ZONE.

A recording's duration is not known before it is transcribed, so the check
refuses uploads once the organization is at or over its minutes; the call that
crosses the limit is allowed (and counted in full)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from django.db.models import Sum
from django.utils import timezone

from calls.billing.models import BillingAccount
from calls.billing.plans import FREE, Plan, get_plan
from calls.tenancy.models import Organization


@dataclasses.dataclass(frozen=True)
class Usage:
    account: BillingAccount
    plan: Plan
    period_start: datetime
    period_end: datetime
    seconds_used: int

    @property
    def minutes_used(self) -> int:
        # Whole minutes, rounded down: a person reads "59 of 60" until the 60th minute is used.
        return self.seconds_used // 60

    @property
    def minutes_included(self) -> int:
        return self.plan.monthly_minutes

    @property
    def minutes_left(self) -> int:
        return max(self.minutes_included - self.minutes_used, 0)

    @property
    def over_limit(self) -> bool:
        return self.seconds_used >= self.minutes_included * 60

    @property
    def percent_used(self) -> int:
        if self.minutes_included <= 0:
            return 100
        return min(round(100 * self.seconds_used / (self.minutes_included * 60)), 100)


def billing_account(organization: Organization) -> BillingAccount:
    """The organization's account; an unsaved free one if Paddle never told us about it."""
    account = BillingAccount.objects.filter(organization=organization).first()
    # organization_id, not organization: assigning the relation asks the database
    # router for a write database, which a replica setup counts as a write.
    return account or BillingAccount(organization_id=organization.pk)


def effective_plan(account: BillingAccount) -> Plan:
    """The plan whose minutes apply now: the subscribed plan while the subscription is live, else free."""
    return get_plan(account.plan if account.is_live else FREE)


def billing_period(account: BillingAccount, now: datetime | None = None) -> tuple[datetime, datetime]:
    now = now or timezone.now()
    start, end = account.period_starts_at, account.period_ends_at
    if account.is_live and start is not None and end is not None and start <= now < end:
        return start, end
    local = timezone.localtime(now)
    month_start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    next_month = (month_start.replace(day=28) + timedelta(days=4)).replace(day=1)
    # Re-localise: the month's first instant can have another UTC offset than now (DST).
    tz = timezone.get_current_timezone()
    return (
        timezone.make_aware(month_start.replace(tzinfo=None), tz),
        timezone.make_aware(next_month.replace(tzinfo=None), tz),
    )


def seconds_used(organization: Organization, start: datetime, end: datetime) -> int:
    """Seconds of calls uploaded in [start, end) (index call_org_created).
    Through the organization's reverse relation: calls.models registers the
    billing models, so billing must not import it back (no import cycle)."""
    total = organization.calls.filter(created_at__gte=start, created_at__lt=end).aggregate(
        total=Sum("duration_seconds")
    )["total"]
    return int(total or 0)


def current_usage(organization: Organization, now: datetime | None = None) -> Usage:
    account = billing_account(organization)
    start, end = billing_period(account, now)
    return Usage(account, effective_plan(account), start, end, seconds_used(organization, start, end))


def upload_refusal(organization: Organization) -> str | None:
    """Why a new upload is refused (the organization has used its minutes), or None."""
    usage = current_usage(organization)
    if not usage.over_limit:
        return None
    end = timezone.localtime(usage.period_end)
    renews = f"{end.day} {end:%B %Y}"
    return (
        f"Your organization has used {usage.minutes_used} of the {usage.minutes_included} minutes "
        f"its {usage.plan.name} plan includes this period, so new recordings cannot be processed "
        f"until the period renews on {renews}. An admin of your organization can upgrade the plan; "
        "see Usage for the plans."
    )
