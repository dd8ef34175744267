"""System checks of the plan table (registered in CallsConfig.ready())."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from calls.billing.plans import FREE


def check_billing_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    messages: list[checks.CheckMessage] = []
    # No message for a missing PADDLE_WEBHOOK_SECRET: a deployment without Paddle
    # billing is legitimate (everyone is on the free plan), and each refused
    # webhook logs why.
    plans = settings.BILLING_PLANS
    if FREE not in plans:
        messages.append(checks.Error("settings.BILLING_PLANS has no 'free' plan.", id="calls.E101"))
    prices = [spec.get("price_id") for spec in plans.values() if spec.get("price_id")]
    if len(prices) != len(set(prices)):
        messages.append(checks.Error("Two plans in settings.BILLING_PLANS share a Paddle price id.", id="calls.E102"))
    return messages
