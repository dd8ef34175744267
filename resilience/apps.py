import logging

from django.apps import AppConfig
from django.conf import settings

logger = logging.getLogger("calliq.resilience")


class ResilienceConfig(AppConfig):
    name = "resilience"
    verbose_name = "Resilience"

    def ready(self) -> None:
        from resilience.cache import tasks as cache_tasks  # noqa: F401  (registers the warming task)
        from resilience.cache import warming, wiring
        from resilience.monitoring import tasks as monitoring_tasks  # noqa: F401  (alert task, Celery signals)

        wiring.connect()
        warming.register_defaults()
        if not settings.REDIS_AVAILABLE:
            logger.warning(
                "DEGRADED: no Redis configured (REDIS_URL is empty): local-memory cache, "
                "per-process circuit breakers, Celery tasks run in-process."
            )
