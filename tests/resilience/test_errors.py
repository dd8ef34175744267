"""The error tracker: grouping by fingerprint, scrubbed samples, states,
the web and Celery hooks, and the hand-off to the worker."""

from __future__ import annotations

import json
import random
import uuid

import pytest
from celery import shared_task
from django.urls import reverse

from resilience.models import ErrorGroup
from resilience.monitoring import errors
from resilience.monitoring.errors import capture_exception, normalise_message
from resilience.monitoring.scrub import FILTERED


# --- twenty distinct bugs ---------------------------------------------------
# 8 raised through our code (grouped by type + in-app frames, whatever the message),
def divide_total(n):
    return 100 / (n - n)


def read_setting(n):
    return {}[f"key_{n}"]


def parse_score(n):
    return int(f"score-{n}")


def pick_rep(n):
    return [][n]


def title_of_missing_call(n):
    return None.title  # type: ignore[attr-defined]


def join_topics(n):
    return "topics:" + n


def rollup_step(n):
    raise RuntimeError(f"rollup {n} failed at row {n * 7}")


def rollup_day(n):
    return rollup_step(n)


def rollup_week(n):
    return rollup_step(n)


RAISED = [divide_total, read_setting, parse_score, pick_rep, title_of_missing_call, join_topics]
RAISED += [rollup_day, rollup_week]


# 6 never raised through our code (no frames: grouped by the masked message),
def unraised(n):
    rng = random.Random(n)
    return [
        ConnectionError(f"provider returned 503 after {rng.randint(1, 9999)} ms"),
        ConnectionError(f"connection to 10.0.{rng.randint(0, 255)}.1:5432 refused"),
        ValueError(f"organization '{rng.choice(['acme', 'globex', 'initech'])}' has no plan"),
        LookupError(f"call {uuid.UUID(int=rng.getrandbits(128))} vanished"),
        TimeoutError(f"task {rng.getrandbits(64):016x} timed out after {rng.randint(1, 60)}.5 s"),
        PermissionError(f'token "{rng.getrandbits(32)}-{n}" was revoked'),
    ]


# and 6 raised from one place but carrying their own fingerprint.
class ProviderError(Exception):
    def __init__(self, message, fingerprint):
        super().__init__(message)
        self.fingerprint = fingerprint


def call_provider(service, n):
    raise ProviderError(f"{service} failed on attempt {n}", fingerprint=["provider", service])


SERVICES = ["assemblyai", "openai", "paddle", "resend", "storage", "webhook"]


def occurrence(bug: int, n: int) -> BaseException:
    if bug < len(RAISED):
        try:
            RAISED[bug](n)
        except Exception as exc:
            return exc
    if bug < len(RAISED) + 6:
        return unraised(n)[bug - len(RAISED)]
    try:
        call_provider(SERVICES[bug - len(RAISED) - 6], n)
    except ProviderError as exc:
        return exc
    raise AssertionError("unreachable")


def test_300_errors_from_20_distinct_bugs_make_exactly_20_groups(db):
    rng = random.Random(11)
    bugs = [bug for bug in range(20) for _ in range(15)]
    rng.shuffle(bugs)
    for bug in bugs:
        capture_exception(occurrence(bug, rng.randint(2, 10**6)))
    groups = ErrorGroup.objects.all()
    assert groups.count() == 20
    assert sorted(g.count for g in groups) == [15] * 20
    assert {tuple(g.fingerprint_parts[:2]) for g in groups if g.fingerprint_parts[0] == "custom"} == {
        ("custom", "provider")
    }
    titles = {g.title for g in groups}
    assert "ConnectionError: provider returned <n> after <n> ms" in titles


def test_messages_are_normalised_so_ids_numbers_and_quoted_strings_do_not_split_groups():
    assert normalise_message("call 42 for 'acme' took 1.5 s") == normalise_message("call 7 for 'globex' took 3 s")
    assert normalise_message(f"call {uuid.uuid4()} vanished") == normalise_message(f"call {uuid.uuid4()} vanished")
    assert normalise_message("call 1 vanished") != normalise_message("call 1 was deleted")


def test_a_resolved_group_that_recurs_is_a_regression_and_an_ignored_one_stays_ignored(db):
    capture_exception(occurrence(0, 1))
    group = ErrorGroup.objects.get()
    assert group.state == ErrorGroup.State.UNRESOLVED
    ErrorGroup.objects.filter(pk=group.pk).mark(ErrorGroup.State.RESOLVED)
    group.refresh_from_db()
    assert group.state == ErrorGroup.State.RESOLVED
    assert group.resolved_at is not None
    capture_exception(occurrence(0, 2))
    group.refresh_from_db()
    assert group.state == ErrorGroup.State.REGRESSED
    assert group.count == 2
    ErrorGroup.objects.filter(pk=group.pk).mark(ErrorGroup.State.IGNORED)
    capture_exception(occurrence(0, 3))
    group.refresh_from_db()
    assert (group.state, group.count) == (ErrorGroup.State.IGNORED, 3)


def test_only_the_last_five_samples_are_kept_newest_first(db):
    for n in range(8):
        capture_exception(occurrence(6, n))  # rollup_day: message says "rollup <n> failed"
    group = ErrorGroup.objects.get()
    assert group.count == 8
    assert [s["exception"]["message"].split()[1] for s in group.samples] == ["7", "6", "5", "4", "3"]


SECRETS = {
    "referer_session": "REFERERSESSIONSECRETQX7",
    "cookie_csrf": "CSRFCOOKIESECRETQX7",
    "form_password": "FORMPASSWORDSECRETQX7",
    "form_csrf": "FORMCSRFSECRETQX7",
    "transcript": "TRANSCRIPTSECRETQX7",
    "query_token": "QUERYTOKENSECRETQX7",
    "query_email": "leaky.person@example.org",
    "api_header": "APIHEADERSECRETQX7",
}


def post_with_secrets(client, url):
    client.cookies["csrftoken"] = SECRETS["cookie_csrf"]
    return client.post(
        f"{url}?token={SECRETS['query_token']}&email={SECRETS['query_email']}&page=2",
        data={
            "password": SECRETS["form_password"],
            "csrfmiddlewaretoken": SECRETS["form_csrf"],
            "transcript": f"Customer: {SECRETS['transcript']} is our budget.",
            "title": "Renewal",
        },
        headers={
            "Referer": f"http://testserver/calls/?sessionid={SECRETS['referer_session']}",
            "X-Api-Token": SECRETS["api_header"],
        },
    )


@pytest.mark.urls("tests.resilience.error_urls")
def test_no_secret_from_a_request_appears_in_any_stored_sample(client, member, org):
    client.raise_request_exception = False
    client.force_login(member.user)
    session_id = client.cookies["sessionid"].value
    response = post_with_secrets(client, "/boom/")
    assert response.status_code == 500
    group = ErrorGroup.objects.get()
    stored = json.dumps([group.title, group.culprit, group.samples, group.fingerprint_parts])
    for name, secret in [*SECRETS.items(), ("session", session_id), ("email", member.user.email)]:
        assert secret not in stored, name
    assert "sk_live_9f8e7d6c5b4a39281706" not in stored
    sample = group.samples[0]
    assert sample["source"] == "web"
    assert sample["route"] == "boom/"
    # Names only: no query or form value is stored (not even harmless-looking ones).
    assert sample["query"] == ["email", "page", "token"]
    assert sample["form"]["title"] == FILTERED
    assert "Renewal" not in stored
    assert sample["headers"]["Referer"] == "http://testserver/calls/"
    assert sample["organization_id"] == org.pk
    assert list(group.organizations.values_list("organization_id", flat=True)) == [org.pk]
    assert group.culprit == "tests.resilience.error_urls:explode"


def test_authorization_and_cookie_headers_never_reach_a_sample(db, rf):
    request = rf.get(
        "/calls/",
        headers={
            "Authorization": "Bearer AUTHSECRETQX7",
            "Cookie": "sessionid=COOKIESESSIONQX7; csrftoken=COOKIECSRFQX7",
            "User-Agent": "Mozilla/5.0 (token=UASECRETQX7)",
        },
    )
    capture_exception(occurrence(2, 5), request=request)
    stored = json.dumps(ErrorGroup.objects.get().samples)
    for secret in ("AUTHSECRETQX7", "COOKIESESSIONQX7", "COOKIECSRFQX7", "UASECRETQX7"):
        assert secret not in stored
    assert "Mozilla/5.0" in stored


@pytest.mark.urls("tests.resilience.error_urls")
def test_the_same_bug_on_different_ids_and_organizations_is_one_group(client, member, other_member):
    client.raise_request_exception = False
    for membership in (member, other_member):
        client.force_login(membership.user)
        for call_id in (3, 99, 12345):
            assert client.get(f"/boom/{call_id}/").status_code == 500
    group = ErrorGroup.objects.with_organization_count().get()
    assert (group.count, group.organization_count) == (6, 2)
    assert group.title == "LookupError: call <n> has no recording"
    assert group.samples[0]["route"] == "boom/<int:call_id>/"


def test_404_and_403_are_not_errors(client, member):
    client.force_login(member.user)
    assert client.get("/calls/999999999/").status_code == 404
    assert client.get(reverse("monitoring:overview")).status_code == 302
    assert not ErrorGroup.objects.exists()


@shared_task(name="tests.resilience.transcribe_badly")
def transcribe_badly(call_id: int, *, organization_id: int, text: str) -> None:
    raise RuntimeError(f"call {call_id} could not be transcribed")


def test_a_failing_celery_task_is_grouped_once_with_its_organization_and_no_argument_text(db, org):
    long_text = "TASKTRANSCRIPTSECRETQX7 " * 20
    for call_id in (1, 2):
        # As a worker runs it: the failure is recorded, not raised to a caller.
        result = transcribe_badly.apply((call_id,), {"organization_id": org.pk, "text": long_text}, throw=False)
        assert result.failed()
    group = ErrorGroup.objects.with_organization_count().get()
    assert (group.count, group.organization_count) == (2, 1)
    sample = group.samples[0]
    assert sample["source"] == "task"
    assert sample["task"] == "tests.resilience.transcribe_badly"
    assert sample["args"] == {"0": [2]}
    assert "TASKTRANSCRIPTSECRETQX7" not in json.dumps(group.samples)


def use_broker(url: str, *, eager: bool) -> None:
    """Point Celery at another broker (see tests/calls/test_upload.py)."""
    from calliq.celery import app

    app.conf.broker_url, app.conf.task_always_eager = url, eager
    app._pool = None
    app.amqp._producer_pool = None


@pytest.fixture
def celery_broker():
    from calliq.celery import app

    saved = app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_transport_options
    app.conf.broker_transport_options = {"max_retries": 0}
    yield use_broker
    app.conf.broker_transport_options = saved[2]
    use_broker(saved[0], eager=saved[1])


def test_errors_are_stored_by_the_worker_off_the_request_path(db, celery_broker, private_redis):
    celery_broker(private_redis.url, eager=False)
    capture_exception(occurrence(0, 1))
    assert not ErrorGroup.objects.exists()  # nothing written by the process that saw it
    queued = private_redis.client().lrange("calliq", 0, -1)
    assert len(queued) == 1
    message = json.loads(queued[0])
    assert message["headers"]["task"] == errors.RECORD_TASK


def test_with_the_task_queue_down_the_error_is_stored_inline_not_lost(db, celery_broker):
    celery_broker("redis://127.0.0.1:1/0", eager=False)  # nothing listens on port 1
    capture_exception(occurrence(1, 1))
    assert ErrorGroup.objects.get().count == 1
