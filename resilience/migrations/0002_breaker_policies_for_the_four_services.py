"""Create the breaker policy of each external service with the original's
promises: open after 5 consecutive failures or 50% errors over 60 s (once 10
calls were seen), 60 s open before a trial, 1 trial at a time, and per-service
call timeouts (AssemblyAI 30 s, OpenAI 30 s, Paddle 10 s, Resend 5 s)."""

from django.db import migrations

TIMEOUTS = {"assemblyai": 30.0, "openai": 30.0, "paddle": 10.0, "resend": 5.0}


def create_policies(apps, schema_editor):
    BreakerPolicy = apps.get_model("resilience", "BreakerPolicy")
    for service, timeout in TIMEOUTS.items():
        BreakerPolicy.objects.get_or_create(
            service=service,
            defaults={
                "failure_threshold": 5,
                "error_rate_threshold": 50,
                "window_seconds": 60,
                "minimum_calls": 10,
                "open_seconds": 60,
                "open_backoff_multiplier": 1.0,
                "max_open_seconds": 600,
                "half_open_max_calls": 1,
                "call_timeout_seconds": timeout,
            },
        )


def remove_policies(apps, schema_editor):
    apps.get_model("resilience", "BreakerPolicy").objects.filter(service__in=TIMEOUTS).delete()


class Migration(migrations.Migration):
    dependencies = [("resilience", "0001_breakers")]
    operations = [migrations.RunPython(create_policies, remove_policies)]
