"""Admin registrations of the resilience app: circuit breakers, cache
control and the error tracker. Each admin class lives beside the code it controls."""

from django.contrib import admin

from resilience.breaker.admin import BreakerEventAdmin, BreakerPolicyAdmin
from resilience.cache import admin as cache_admin  # noqa: F401  (registers the cache control pages)
from resilience.models import AlertRule, BreakerEvent, BreakerPolicy, ErrorGroup
from resilience.monitoring.admin import AlertRuleAdmin
from resilience.monitoring.errors_admin import ErrorGroupAdmin

admin.site.register(BreakerPolicy, BreakerPolicyAdmin)
admin.site.register(BreakerEvent, BreakerEventAdmin)
admin.site.register(ErrorGroup, ErrorGroupAdmin)
admin.site.register(AlertRule, AlertRuleAdmin)
