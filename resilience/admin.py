"""Admin registrations of the resilience app: circuit breakers (and, as it
lands, the cache). Each admin class lives beside the code it controls."""

from django.contrib import admin

from resilience.breaker.admin import BreakerEventAdmin, BreakerPolicyAdmin
from resilience.models import BreakerEvent, BreakerPolicy

admin.site.register(BreakerPolicy, BreakerPolicyAdmin)
admin.site.register(BreakerEvent, BreakerEventAdmin)
