from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Calls"

    def ready(self) -> None:
        # Celery's autodiscovery finds calls.tasks only; the webhook tasks live in their package.
        from calls.webhooks import tasks  # noqa: F401
