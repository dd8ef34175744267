"""Billing routes: Paddle's webhook and the usage page."""

from django.urls import path

from calls.billing import views

app_name = "billing"

urlpatterns = [
    path("webhooks/paddle", views.paddle_webhook, name="paddle_webhook"),
    path("billing/usage/", views.usage, name="usage"),
]
