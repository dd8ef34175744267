"""The organization's plan for the navigation ({% load billing %}{% plan_name current_organization %})."""

from __future__ import annotations

from django import template

from calls.billing.usage import billing_account, effective_plan
from calls.tenancy.models import Organization

register = template.Library()


@register.simple_tag
def plan_name(organization: Organization | None) -> str:
    """The name of the plan whose minutes apply now (one indexed read); "" without an organization."""
    if organization is None:
        return ""
    return effective_plan(billing_account(organization)).name
