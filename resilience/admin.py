"""Admin registrations of the resilience app: circuit breakers and cache
control. Each admin class lives beside the code it controls."""

from django.contrib import admin

from resilience.breaker.admin import BreakerEventAdmin, BreakerPolicyAdmin
from resilience.cache import admin as cache_admin  # noqa: F401  (registers the cache control pages)
from resilience.models import AlertRule, BreakerEvent, BreakerPolicy
from resilience.monitoring.admin import AlertRuleAdmin

admin.site.register(BreakerPolicy, BreakerPolicyAdmin)
admin.site.register(BreakerEvent, BreakerEventAdmin)
admin.site.register(AlertRule, AlertRuleAdmin)
