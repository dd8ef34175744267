"""With SENTRY_DSN set, sentry-sdk receives errors through our scrubber: a
local HTTP server plays Sentry and keeps the envelopes it is sent."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import brotli
import pytest
import sentry_sdk

from resilience.models import ErrorGroup
from resilience.monitoring.errors import init_sentry
from tests.resilience.test_errors import SECRETS, post_with_secrets


class FakeSentry(ThreadingHTTPServer):
    def __init__(self) -> None:
        self.envelopes: list[bytes] = []
        super().__init__(("127.0.0.1", 0), self.Handler)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            encoding = self.headers.get("Content-Encoding", "")
            if encoding == "gzip":
                body = gzip.decompress(body)
            elif encoding == "br":
                body = brotli.decompress(body)
            self.server.envelopes.append(body)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args) -> None:
            pass


@pytest.fixture
def fake_sentry() -> Iterator[FakeSentry]:
    server = FakeSentry()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    init_sentry(f"http://publickey@127.0.0.1:{server.server_address[1]}/42", environment="test")
    yield server
    sentry_sdk.get_client().close(timeout=2)
    sentry_sdk.init()  # no DSN: later tests send nothing
    server.shutdown()


@pytest.mark.urls("tests.resilience.error_urls")
def test_sentry_receives_the_error_with_no_secret_from_the_request(client, member, fake_sentry):
    client.raise_request_exception = False
    client.force_login(member.user)
    session_id = client.cookies["sessionid"].value
    assert post_with_secrets(client, "/boom/").status_code == 500
    sentry_sdk.flush(timeout=5)
    events = [envelope for envelope in fake_sentry.envelopes if b'"type":"event"' in envelope.replace(b" ", b"")]
    assert len(events) == 1
    sent = events[0].decode()
    assert "RuntimeError" in sent
    assert "tests.resilience.error_urls" in sent
    for name, secret in [*SECRETS.items(), ("session", session_id), ("email", member.user.email)]:
        assert secret not in sent, name
    assert "sk_live_9f8e7d6c5b4a39281706" not in sent
    # Our own tracker got it too, grouped the way Sentry is told to group it.
    assert ErrorGroup.objects.get().fingerprint_parts[-1] in sent
