from django.apps import AppConfig


class AnalyticsConfig(AppConfig):
    name = "analytics"
    verbose_name = "Analytics"

    def ready(self) -> None:
        # Rollups follow every change to calls (per row and in bulk).
        from analytics import cache_wiring, gauges, receivers  # noqa: F401

        cache_wiring.register_warming()
        gauges.register()  # business gauges for /metrics and the monitoring pages
