"""The organization's plan for the navigation ({% load billing %}{% plan_name current_organization %})."""

from __future__ import annotations

from django import template

from calls.billing.models import BillingAccount
from calls.billing.usage import effective_plan
from calls.tenancy.models import Organization

register = template.Library()


@register.simple_tag
def plan_name(organization: Organization | None) -> str:
    """The name of the plan whose minutes apply now; "" without an organization.
    The tenancy middleware loads the account with the memberships, so this costs no query."""
    if organization is None:
        return ""
    try:
        account = organization.billing_account
    except BillingAccount.DoesNotExist:
        account = BillingAccount(organization_id=organization.pk)  # see usage.billing_account
    return effective_plan(account).name
