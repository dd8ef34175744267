"""Billing: an organization's plan and subscription status, kept current by
Paddle Billing's webhooks, and the monthly minutes the plan allows.

- models.py: BillingAccount (one per organization) and PaddleEvent (every
  webhook event id ever received: idempotency and an audit trail).
- plans.py: the plans (free / team / business) and their Paddle price ids.
- usage.py: the current billing period, the minutes used in it, and whether
  an upload is refused.
- webhooks.py: parse a Paddle event and apply it (idempotent, in order).
- views.py, urls.py: POST /webhooks/paddle and the usage page.
- checks.py: system checks of the plan table.

The models are registered with the calls app through calls/models.py."""
