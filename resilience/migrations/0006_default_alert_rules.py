"""The alert rules CallIQ ships with; operators tune them in the admin."""

from django.db import migrations

DEFAULT_RULES = [
    # name, metric, comparison, threshold, recovery, for, keep firing for, window, min samples
    ("High error rate", "error_rate", ">", 0.05, 0.02, 120, 300, 5, 20),
    ("Slow p95 latency", "latency_p95_ms", ">", 1000.0, 800.0, 300, 300, 5, 20),
    ("Circuit breaker open", "breakers_open", ">=", 1.0, None, 0, 60, 5, 0),
    ("Celery queue backlog", "queue_depth", ">", 500.0, 100.0, 300, 120, 5, 0),
    ("Cache hit rate collapse", "cache_hit_rate", "<", 0.3, 0.5, 300, 300, 5, 50),
]


def add_rules(apps, schema_editor):
    AlertRule = apps.get_model("resilience", "AlertRule")
    for name, metric, comparison, threshold, recovery, for_s, keep_s, window, min_samples in DEFAULT_RULES:
        AlertRule.objects.get_or_create(
            name=name,
            defaults={
                "metric": metric,
                "comparison": comparison,
                "threshold": threshold,
                "recovery_threshold": recovery,
                "for_seconds": for_s,
                "keep_firing_for_seconds": keep_s,
                "window_minutes": window,
                "min_samples": min_samples,
            },
        )


def remove_rules(apps, schema_editor):
    AlertRule = apps.get_model("resilience", "AlertRule")
    AlertRule.objects.filter(name__in=[rule[0] for rule in DEFAULT_RULES]).delete()


class Migration(migrations.Migration):
    dependencies = [("resilience", "0005_alerts")]

    operations = [migrations.RunPython(add_rules, remove_rules)]
