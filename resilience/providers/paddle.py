"""Paddle Billing client: read a subscription and a customer."""

from __future__ import annotations

from resilience.providers.base import ProviderClient, require


class PaddleClient(ProviderClient):
    service = "paddle"

    def get_subscription(self, subscription_id: str) -> dict:
        body = self.request_json("GET", f"/subscriptions/{subscription_id}")
        require(self.service, body, "data")
        require(self.service, body["data"], "id", "status", "customer_id")
        return body["data"]

    def get_customer(self, customer_id: str) -> dict:
        body = self.request_json("GET", f"/customers/{customer_id}")
        require(self.service, body, "data")
        require(self.service, body["data"], "id", "email")
        return body["data"]
