"""Provider clients against the simulator over HTTP: request and response
shapes, authentication, timeouts, and errors sorted into retryable or not."""

from __future__ import annotations

import hashlib
import io
import json

import pytest

from resilience.breaker import breaker
from resilience.errors import (
    ProviderBadResponse,
    ProviderClientError,
    ProviderConnectionError,
    ProviderTimeout,
)
from resilience.providers.assemblyai import AssemblyAIClient, utterances_from
from resilience.providers.base import parse_retry_after
from resilience.providers.openai import OpenAIClient, parse_analysis
from resilience.providers.paddle import PaddleClient
from resilience.providers.resend import ResendClient
from tests.private_redis import free_port


def test_assemblyai_uploads_creates_and_reads_a_transcript_with_speakers(db, simulator):
    with AssemblyAIClient() as client:
        upload_url = client.upload(io.BytesIO(b"RIFF fake audio"))
        job = client.create_transcript(upload_url)
        assert job["status"] == "queued"
        body = client.wait_for_transcript(job["id"])
    assert body["status"] == "completed"
    utterances = utterances_from(body)
    assert {u["speaker"] for u in utterances} == {"A", "B"}
    assert all(u["end_ms"] > u["start_ms"] for u in utterances)


def test_assemblyai_answers_are_deterministic_for_the_same_audio(db, simulator):
    with AssemblyAIClient() as client:
        first = client.wait_for_transcript(client.create_transcript(client.upload(io.BytesIO(b"same")))["id"])
        second = client.wait_for_transcript(client.create_transcript(client.upload(io.BytesIO(b"same")))["id"])
    assert first["utterances"] == second["utterances"]


class ReadRecorder(io.BytesIO):
    """A recording file that notes how much each read asked for."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.reads: list[int] = []

    def read(self, size: int | None = -1) -> bytes:
        self.reads.append(-1 if size is None else size)
        return super().read(size)


def test_assemblyai_upload_streams_the_file_in_chunks(db, simulator, sim):
    audio = bytes(range(256)) * (5 * 4096 + 7)  # a little over 5 MB
    recording = ReadRecorder(audio)
    with AssemblyAIClient() as client:
        upload_url = client.upload(recording)
    # Read in bounded pieces, never read() whole, and sent chunked: nothing held the file at once.
    assert recording.reads
    assert all(0 < size <= 64 * 1024 for size in recording.reads)
    counters = sim.counters("assemblyai")
    assert counters["chunked_uploads"] == 1
    assert counters["upload_bytes"] == len(audio)
    # The simulator names the upload after the bytes it received: all of them, in order.
    assert upload_url.endswith(hashlib.sha256(audio).hexdigest()[:24])


def test_a_retried_upload_sends_the_whole_file_again(db, simulator, sim):
    sim.configure("assemblyai", fail_next=1)
    audio = b"RIFF" + b"x" * 200_000
    with AssemblyAIClient(initial_delay=0.01) as client:
        upload_url = client.upload(io.BytesIO(audio))
    assert sim.counters("assemblyai")["statuses"] == {"503": 1, "200": 1}
    assert sim.counters("assemblyai")["upload_bytes"] == len(audio)  # the failed attempt was answered unread
    assert upload_url.endswith(hashlib.sha256(audio).hexdigest()[:24])


def test_an_unknown_transcript_is_a_client_error_that_is_not_retried(db, simulator, sim):
    with AssemblyAIClient() as client, pytest.raises(ProviderClientError) as missing:
        client.get_transcript("nope")
    assert missing.value.status == 404
    assert sim.requests("assemblyai") == 1


def test_a_missing_api_key_is_a_401_client_error(db, simulator):
    with AssemblyAIClient(api_key="") as client, pytest.raises(ProviderClientError) as unauthorised:
        client.upload(io.BytesIO(b"audio"))
    assert unauthorised.value.status == 401


def test_openai_returns_the_call_analysis_as_validated_json(db, simulator, sim):
    with OpenAIClient() as client:
        result = client.analyse_transcript("A: We covered pricing and a demo.\nB: Send the contract.")
    assert 0 <= result.score <= 100
    assert -1 <= result.sentiment <= 1
    assert {"pricing", "demo", "contract"} <= set(result.topics)
    assert result.summary
    assert result.model == "gpt-4o-mini"


def test_an_analysis_that_is_not_the_json_asked_for_is_a_bad_response():
    with pytest.raises(ProviderBadResponse):
        parse_analysis("openai", "Sure! Here is the analysis.", "gpt")
    with pytest.raises(ProviderBadResponse):
        parse_analysis("openai", json.dumps({"summary": "x", "sentiment": 3, "score": 50}), "gpt")


def test_paddle_reads_a_subscription_and_its_customer(db, simulator):
    with PaddleClient() as client:
        subscription = client.get_subscription("sub_01acme")
        customer = client.get_customer(subscription["customer_id"])
    assert subscription["status"] == "active"
    assert subscription["custom_data"]["plan"] in {"starter", "growth", "enterprise"}
    assert customer["id"] == "ctm_01acme"


def test_resend_sends_once_per_idempotency_key(db, simulator, sim):
    with ResendClient() as client:
        first = client.send_email(to=["rep@example.com"], subject="Hi", text="Body", idempotency_key="k-1")
        again = client.send_email(to=["rep@example.com"], subject="Hi", text="Body", idempotency_key="k-1")
    assert first == again
    state = sim.state()
    assert len(state["emails_sent"]) == 1
    assert state["services"]["resend"]["counters"]["deduplicated"] == 1


def test_resend_rejects_an_email_without_a_subject_as_our_own_error(db, simulator):
    with ResendClient() as client, pytest.raises(ProviderClientError) as invalid:
        client.send_email(to=["rep@example.com"], subject="", text="Body")
    assert invalid.value.status == 422
    assert not invalid.value.retryable


def test_a_hanging_provider_times_out_after_the_policys_call_timeout_and_counts(db, simulator, sim, fast_policy):
    fast_policy("paddle", call_timeout_seconds=0.2, failure_threshold=1, open_seconds=60)
    sim.configure("paddle", timeout=True, hang_seconds=3)
    with PaddleClient(max_retries=0) as client, pytest.raises(ProviderTimeout):
        client.get_subscription("sub_01acme")
    assert breaker("paddle").snapshot().state == "open"


def test_a_provider_that_refuses_connections_is_a_retryable_connection_error(db, fast_policy):
    fast_policy("resend", failure_threshold=10)
    port = free_port(range(16480, 16490))
    client = ResendClient(base_url=f"http://127.0.0.1:{port}", max_retries=1, initial_delay=0.01)
    with client, pytest.raises(ProviderConnectionError) as refused:
        client.send_email(to=["rep@example.com"], subject="Hi", text="Body")
    assert refused.value.retryable
    assert breaker("resend").snapshot().failures == 2


def test_retry_after_is_read_as_seconds_or_as_an_http_date():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
