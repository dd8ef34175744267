from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Calls"

    def ready(self) -> None:
        # Cache tags, user generations and warming for the calls app's data.
        from calls import cache_wiring

        cache_wiring.connect()
        # Celery's autodiscovery finds calls.tasks only; the webhook tasks live in their package.
        from calls import pipeline
        from calls.webhooks import tasks  # noqa: F401
        from calls.webhooks.delivery import endpoint_disabled

        endpoint_disabled.connect(pipeline.email_admins_endpoint_disabled, dispatch_uid="calls.email_admins")
