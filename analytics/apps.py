from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        # Rollups follow every change to calls (per row and in bulk).
        from analytics import gauges, receivers  # noqa: F401

        gauges.register()  # business gauges for /metrics and the monitoring pages
