"""Apply Paddle Billing's subscription events to an organization's billing account.

One function owns the change (apply_paddle_event) and its rules:

- Idempotent: the event id is inserted into PaddleEvent first, in the same
  transaction as the change; a duplicate (Paddle retries, or redelivers) hits
  the unique constraint and changes nothing.
- In order: Paddle does not promise delivery order, so an event whose
  occurred_at is older than the last one applied for the same subscription is
  recorded as stale and not applied. The account row is locked while deciding.
- Which organization: custom_data.organization_id, set at checkout, else the
  account already holding the Paddle customer or subscription id.
- custom_data comes from the checkout page, so a customer could name another
  organization in it. An event for a different subscription than the
  account's is therefore applied only while the account has no live
  subscription: a stranger can give an organization a paid plan, never
  cancel or downgrade the one it pays for.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils.dateparse import parse_datetime

from calls.billing.models import LIVE_STATUSES, BillingAccount, PaddleEvent, SubscriptionStatus
from calls.billing.plans import plan_for_prices
from calls.cache_tags import org_tag
from calls.tenancy.models import Organization
from resilience.cache import invalidate_tags
from resilience.providers.paddle_webhooks import SUBSCRIPTION_EVENTS

logger = logging.getLogger("calliq.calls.billing")


class InvalidEvent(ValueError):
    """The body is signed but is not a Paddle event we can read (400)."""


@dataclasses.dataclass(frozen=True)
class PaddleEventPayload:
    event_id: str
    event_type: str
    occurred_at: datetime
    data: dict[str, Any]

    @property
    def subscription_id(self) -> str:
        value = self.data.get("id")
        return value[:64] if isinstance(value, str) and self.event_type in SUBSCRIPTION_EVENTS else ""


_STATUSES = frozenset(SubscriptionStatus.values) - {SubscriptionStatus.NONE}
# Paddle ids are a prefix and 26 characters; our columns hold 64.
MAX_ID_LENGTH = 64


def _text(value: object, limit: int = MAX_ID_LENGTH) -> str:
    return value[:limit] if isinstance(value, str) else ""


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = parse_datetime(value)
    except ValueError:
        return None
    return parsed if parsed is not None and parsed.tzinfo is not None else None


def parse_event(raw_body: bytes) -> PaddleEventPayload:
    try:
        body = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidEvent("the body is not JSON") from exc
    if not isinstance(body, dict):
        raise InvalidEvent("the body is not a JSON object")
    event_id, event_type = _text(body.get("event_id"), 100), _text(body.get("event_type"), 100)
    occurred_at = _datetime(body.get("occurred_at"))
    data = body.get("data")
    if not event_id or len(event_id) > 64 or not event_type or len(event_type) > 64:
        raise InvalidEvent("event_id and event_type are required (at most 64 characters)")
    if occurred_at is None:
        raise InvalidEvent("occurred_at must be an RFC 3339 date-time with a time zone")
    if not isinstance(data, dict):
        raise InvalidEvent("data must be an object")
    if event_type in SUBSCRIPTION_EVENTS:
        ids = [data.get("id"), data.get("customer_id") or ""]
        if not data.get("id") or not all(isinstance(v, str) and len(v) <= MAX_ID_LENGTH for v in ids):
            raise InvalidEvent(
                f"a subscription event needs data.id (and customer_id) of at most {MAX_ID_LENGTH} characters"
            )
        if data.get("status") not in _STATUSES:
            raise InvalidEvent(f"data.status must be one of {', '.join(sorted(_STATUSES))}")
    return PaddleEventPayload(event_id, event_type, occurred_at, data)


def _organization_of(data: dict[str, Any]) -> Organization | None:
    custom = data.get("custom_data")
    raw_id = custom.get("organization_id") if isinstance(custom, dict) else None
    if isinstance(raw_id, int | str) and str(raw_id).isascii() and str(raw_id).isdigit() and len(str(raw_id)) < 19:
        organization = Organization.objects.filter(pk=int(raw_id)).first()
        if organization is not None:
            return organization
    accounts = BillingAccount.objects.select_related("organization")
    for field, value in (("paddle_customer_id", data.get("customer_id")), ("paddle_subscription_id", data.get("id"))):
        if _text(value):
            account = accounts.filter(**{field: value}).first()
            if account is not None:
                return account.organization
    return None


def _price_ids(data: dict[str, Any]) -> list[str]:
    items = data.get("items")
    prices = [item.get("price") for item in items if isinstance(item, dict)] if isinstance(items, list) else []
    return [price["id"] for price in prices if isinstance(price, dict) and isinstance(price.get("id"), str)]


def _apply(account: BillingAccount, event: PaddleEventPayload) -> None:
    data = event.data
    account.status = data["status"]
    account.paddle_subscription_id = event.subscription_id
    account.paddle_customer_id = _text(data.get("customer_id")) or account.paddle_customer_id
    prices = _price_ids(data)
    plan = plan_for_prices(prices)
    if plan is not None:
        account.plan = plan.key
        account.price_id = plan.price_id
    else:
        # Keep the plan we knew: better than dropping a paying customer to free on a price we don't know.
        logger.warning("Paddle event %s: none of the prices %s is a CallIQ plan", event.event_id, prices)
    period = data.get("current_billing_period")
    period = period if isinstance(period, dict) else {}
    account.period_starts_at = _datetime(period.get("starts_at"))
    account.period_ends_at = _datetime(period.get("ends_at"))
    change = data.get("scheduled_change")
    account.scheduled_change = (
        {key: change.get(key) for key in ("action", "effective_at", "resume_at")} if isinstance(change, dict) else None
    )
    account.last_event_at = event.occurred_at
    account.last_event_id = event.event_id
    account.save()
    # Cached pages show the plan in the navigation.
    invalidate_tags(org_tag(account.organization_id))  # after the commit


def _decide(account: BillingAccount, event: PaddleEventPayload) -> PaddleEvent.Outcome:
    same_subscription = account.paddle_subscription_id in ("", event.subscription_id)
    if same_subscription:
        if account.last_event_at is not None and event.occurred_at < account.last_event_at:
            return PaddleEvent.Outcome.STALE
        return PaddleEvent.Outcome.APPLIED
    if account.is_live or event.data["status"] not in LIVE_STATUSES:
        return PaddleEvent.Outcome.OTHER_SUBSCRIPTION
    return PaddleEvent.Outcome.APPLIED


def apply_paddle_event(event: PaddleEventPayload) -> PaddleEvent.Outcome | None:
    """Record and apply one event; returns what was done, or None for a duplicate event id."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                record = PaddleEvent.objects.create(
                    event_id=event.event_id,
                    event_type=event.event_type,
                    occurred_at=event.occurred_at,
                    subscription_id=event.subscription_id,
                    outcome=PaddleEvent.Outcome.IGNORED_TYPE,
                )
        except IntegrityError:
            logger.info("Paddle event %s received again: ignored", event.event_id)
            return None
        if event.event_type not in SUBSCRIPTION_EVENTS:
            return record.outcome
        organization = _organization_of(event.data)
        if organization is None:
            logger.warning(
                "Paddle event %s (%s) matches no organization: recorded, not applied",
                event.event_id,
                event.event_type,
            )
            record.outcome = PaddleEvent.Outcome.UNMATCHED
        else:
            BillingAccount.objects.get_or_create(organization=organization)
            account = BillingAccount.objects.select_for_update().get(organization=organization)
            record.organization = organization
            record.outcome = _decide(account, event)
            if record.outcome == PaddleEvent.Outcome.APPLIED:
                _apply(account, event)
            else:
                logger.info("Paddle event %s not applied: %s", event.event_id, record.get_outcome_display())
        record.save(update_fields=["organization", "outcome"])
        return PaddleEvent.Outcome(record.outcome)
