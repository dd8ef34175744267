"""The plans CallIQ sells and how a Paddle price maps onto one.

settings.BILLING_PLANS is the table: key -> name, monthly minutes and the
Paddle price id (from the environment; the defaults are the simulator's). The
free plan has no price: it is what an organization without a live
subscription gets."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from django.conf import settings

FREE = "free"


@dataclasses.dataclass(frozen=True)
class Plan:
    key: str
    name: str
    monthly_minutes: int
    price_id: str


def all_plans() -> list[Plan]:
    """Every plan, in the settings' order (cheapest first)."""
    return [
        Plan(key, str(spec["name"]), int(spec["minutes"]), str(spec.get("price_id") or ""))
        for key, spec in settings.BILLING_PLANS.items()
    ]


def get_plan(key: str) -> Plan:
    """The plan called `key`; an unknown key (a plan since removed) is the free plan."""
    plans = {plan.key: plan for plan in all_plans()}
    return plans.get(key) or plans[FREE]


def plan_for_prices(price_ids: Iterable[str]) -> Plan | None:
    """The largest plan among a subscription's item prices, or None if no price is one of ours."""
    wanted = set(price_ids)
    matching = [plan for plan in all_plans() if plan.price_id and plan.price_id in wanted]
    return max(matching, key=lambda plan: plan.monthly_minutes, default=None)
