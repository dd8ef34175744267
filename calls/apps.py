from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Calls"

    def ready(self) -> None:
        from django.core import checks

        from calls import cache_wiring, pipeline
        from calls.billing.checks import check_billing_settings
        from calls.webhooks import tasks  # noqa: F401
        from calls.webhooks.delivery import endpoint_disabled

        # Cache tags, user generations and warming for the calls app's data.
        cache_wiring.connect()
        checks.register(check_billing_settings)
        # Celery's autodiscovery finds calls.tasks only; the webhook tasks live in their package.
        endpoint_disabled.connect(pipeline.email_admins_endpoint_disabled, dispatch_uid="calls.email_admins")
