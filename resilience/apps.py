import logging

from django.apps import AppConfig
from django.conf import settings
from django.core import checks

logger = logging.getLogger("calliq.resilience")


class ResilienceConfig(AppConfig):
    name = "resilience"
    verbose_name = "Resilience"

    def ready(self) -> None:
        from resilience import tracing
        from resilience.cache import tasks as cache_tasks  # noqa: F401  (registers the warming task)
        from resilience.monitoring import buffer, errors, rum
        from resilience.monitoring import tasks as monitoring_tasks  # noqa: F401  (alert task, Celery signals)
        from resilience.redis_policy import check_eviction_policies

        errors.connect()
        if buffer.add_provider_call not in tracing.provider_observers:
            tracing.provider_observers.append(buffer.add_provider_call)
        checks.register(rum.check_web_vitals_installed, checks.Tags.staticfiles)
        checks.register(check_eviction_policies, checks.Tags.caches)
        if not settings.REDIS_AVAILABLE:
            logger.warning(
                "DEGRADED: no Redis configured (REDIS_URL is empty): local-memory cache, "
                "per-process circuit breakers, Celery tasks run in-process."
            )
