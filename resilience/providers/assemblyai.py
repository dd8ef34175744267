"""AssemblyAI speech-to-text client (API v2): upload a recording, create a
transcript with speaker labels, read it back. The `authorization` header
carries the bare API key, as AssemblyAI expects."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import BinaryIO

from resilience.errors import ProviderBadResponse
from resilience.providers.base import ProviderClient, require


class TranscriptNotReady(Exception):
    """AssemblyAI is still working on it; ask again later."""

    def __init__(self, transcript_id: str, status: str) -> None:
        super().__init__(f"transcript {transcript_id} is {status}")
        self.transcript_id = transcript_id
        self.status = status


class FileChunks:
    """A file as an iterable of chunks that starts again from the top on each
    iteration, so a retried request sends the whole file again (a generator
    would be spent after the first attempt)."""

    chunk_size = 64 * 1024

    def __init__(self, file: BinaryIO) -> None:
        self.file = file
        self.start = file.tell()

    def __iter__(self) -> Iterator[bytes]:
        self.file.seek(self.start)
        while chunk := self.file.read(self.chunk_size):
            yield chunk


class AssemblyAIClient(ProviderClient):
    service = "assemblyai"

    def auth_headers(self) -> dict[str, str]:
        return {"authorization": self.api_key}

    def upload(self, audio: BinaryIO) -> str:
        """Upload a recording from an open binary file, streamed in chunks (chunked
        transfer encoding), never read whole; returns the upload_url to transcribe."""
        body = self.request_json(
            "POST", "/v2/upload", content=FileChunks(audio), headers={"content-type": "application/octet-stream"}
        )
        require(self.service, body, "upload_url")
        return body["upload_url"]

    def create_transcript(self, audio_url: str, *, speaker_labels: bool = True, language_code: str = "en") -> dict:
        body = self.request_json(
            "POST",
            "/v2/transcript",
            json={"audio_url": audio_url, "speaker_labels": speaker_labels, "language_code": language_code},
        )
        require(self.service, body, "id", "status")
        return body

    def get_transcript(self, transcript_id: str) -> dict:
        body = self.request_json("GET", f"/v2/transcript/{transcript_id}")
        require(self.service, body, "id", "status")
        if body["status"] == "error":
            raise ProviderBadResponse(self.service, f"transcript {transcript_id} failed: {body.get('error', '?')}")
        return body

    def wait_for_transcript(self, transcript_id: str, *, polls: int = 5, interval: float = 0.5) -> dict:
        """Poll until completed; raises TranscriptNotReady after `polls` reads."""
        for n in range(polls):
            body = self.get_transcript(transcript_id)
            if body["status"] == "completed":
                return body
            if n + 1 < polls:
                time.sleep(interval)
        raise TranscriptNotReady(transcript_id, body["status"])


def utterances_from(body: dict) -> list[dict]:
    """AssemblyAI utterances ({speaker, start, end, text} in ms) in CallIQ's shape."""
    utterances = body.get("utterances") or []
    return [
        {"speaker": str(u["speaker"]), "start_ms": int(u["start"]), "end_ms": int(u["end"]), "text": str(u["text"])}
        for u in utterances
    ]
