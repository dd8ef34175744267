"""Monitoring's Celery side: the alert evaluation beat task, and task outcomes
counted from Celery's signals into the worker's metrics buffer."""

from __future__ import annotations

from typing import Any

from celery import shared_task
from celery.signals import task_failure, task_retry, task_success

from resilience.monitoring import buffer


@shared_task(name="resilience.monitoring.evaluate_alerts", ignore_result=True)
def evaluate_alerts_task() -> int:
    from resilience.monitoring.alerts import evaluate_rules
    from resilience.monitoring.report import sample_gauges

    sample_gauges()
    return len(evaluate_rules())


def _name(sender: Any) -> str:
    return getattr(sender, "name", None) or str(sender)


@task_success.connect
def _count_success(sender: Any = None, **kwargs: Any) -> None:
    buffer.add_task(_name(sender), "success")


@task_failure.connect
def _count_failure(sender: Any = None, **kwargs: Any) -> None:
    buffer.add_task(_name(sender), "failure")


@task_retry.connect
def _count_retry(sender: Any = None, **kwargs: Any) -> None:
    buffer.add_task(_name(sender), "retry")
