"""Fleet settings read from the environment (calliq/settings.py, docs/scaling.md):
each case imports the settings in a fresh process and prints what a fleet
script relies on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PRINT = """
import json
from calliq import settings as s
db = s.DATABASES["default"]
print(json.dumps({
    "conn_max_age": db["CONN_MAX_AGE"],
    "pool": db.get("OPTIONS", {}).get("pool"),
    "prepare_threshold": db.get("OPTIONS", {}).get("prepare_threshold", "unset"),
    "no_server_side_cursors": db.get("DISABLE_SERVER_SIDE_CURSORS", False),
    "replica": s.DATABASES.get("replica", {}).get("PORT"),
    "replica_test_mirror": s.DATABASES.get("replica", {}).get("TEST", {}).get("MIRROR"),
    "queues": [(q.name, q.exchange.type, q.queue_arguments) for q in getattr(s, "CELERY_TASK_QUEUES", [])],
    "transport_options": getattr(s, "CELERY_BROKER_TRANSPORT_OPTIONS", None),
    "dead_letter": getattr(getattr(s, "CELERY_DEAD_LETTER_QUEUE", None), "name", None),
}))
"""


def settings_with(**env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("CALLIQ_DB_", "CELERY_", "DATABASE_"))}
    base |= {"DATABASE_URL": "postgres://postgres@127.0.0.1:5432/calliq", "DJANGO_DEBUG": "1"}
    result = subprocess.run(
        [sys.executable, "-c", PRINT], cwd=ROOT, env=base | env, capture_output=True, text=True, check=True
    )
    return json.loads(result.stdout)


def test_by_default_connections_persist_and_celery_uses_redis_without_quorum_queues():
    s = settings_with()
    assert s["conn_max_age"] == 60
    assert s["pool"] is None
    assert not s["no_server_side_cursors"]
    assert s["queues"] == []
    assert s["replica"] is None


def test_calliq_db_pool_turns_on_the_psycopg_pool_with_its_sizes():
    s = settings_with(CALLIQ_DB_POOL="1", CALLIQ_DB_POOL_MIN_SIZE="3", CALLIQ_DB_POOL_MAX_SIZE="7")
    assert s["pool"] == {"min_size": 3, "max_size": 7, "timeout": 10.0}
    assert s["conn_max_age"] == 0  # Django refuses persistent connections with a pool


def test_calliq_db_pgbouncer_turns_off_server_side_cursors_and_prepared_statements():
    s = settings_with(CALLIQ_DB_PGBOUNCER="1")
    assert s["no_server_side_cursors"] is True
    assert s["prepare_threshold"] is None


def test_a_replica_url_adds_the_replica_alias_mirrored_in_tests():
    s = settings_with(DATABASE_REPLICA_URL="postgres://postgres@127.0.0.1:5433/calliq")
    assert s["replica"] == 5433
    assert s["replica_test_mirror"] == "default"


def test_an_amqp_broker_gets_a_quorum_queue_with_a_delivery_limit_and_a_dead_letter_queue():
    s = settings_with(CELERY_BROKER_URL="amqp://guest:guest@127.0.0.1:5672//", CELERY_DELIVERY_LIMIT="4")
    [(name, exchange_type, arguments)] = s["queues"]
    assert (name, exchange_type) == ("calliq", "topic")
    assert arguments == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 4,
        "x-dead-letter-exchange": "calliq.dlx",
        "x-dead-letter-routing-key": "calliq.dead",
    }
    assert s["transport_options"] == {"confirm_publish": True}
    assert s["dead_letter"] == "calliq.dead"
