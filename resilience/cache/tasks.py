"""Celery task that warms the cache (the optional beat entry and the admin's "warm now")."""

from __future__ import annotations

from celery import shared_task

from resilience.cache.warming import warm_scope


@shared_task(name="resilience.cache.warm", acks_late=True, ignore_result=True)
def warm_cache_task(scope: str | None = None, only: list[str] | None = None, max_users: int = 10) -> dict:
    report = warm_scope(scope=scope, only=only, max_users=max_users)
    return {"warmed": report.warmed, "already_warm": report.already_warm, "failed": report.failed}
