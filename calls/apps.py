from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Calls"

    def ready(self) -> None:
        # Cache tags, user generations and warming for the calls app's data.
        from calls import cache_wiring

        cache_wiring.connect()

        from django.core import checks

        from calls.billing.checks import check_billing_settings

        checks.register(check_billing_settings)
