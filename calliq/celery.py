"""The Celery application: configuration comes from Django settings (CELERY_*).

On RabbitMQ (settings.CELERY_BROKER_IS_AMQP) a worker declares the dead-letter
exchange and queue before it consumes: the task queue names them as its
x-dead-letter-exchange, and RabbitMQ drops, rather than keeps, what it
dead-letters to an exchange that does not exist. The dead-letter queue is
never in task_queues, so no worker consumes (and re-runs) a poison message.
"""

import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "calliq.settings")

app = Celery("calliq")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
def declare_dead_letter_queue(sender: object = None, **kwargs: object) -> None:
    worker_app = getattr(sender, "app", app)
    queue = worker_app.conf.get("dead_letter_queue")
    if queue is None:
        return
    with worker_app.connection_for_write() as connection:
        queue(connection.default_channel).declare()
