"""The provider simulator: one HTTP server on loopback answering the shapes of
AssemblyAI (/assemblyai/v2/...), OpenAI chat completions (/openai/v1/...),
Paddle (/paddle/...) and Resend (/resend/...), with deterministic results and
per-service knobs: latency, failure rate (deterministic: every 1/rate-th
request fails), a number of next requests to fail, full outage, hanging
requests (timeouts), and 429 with Retry-After. It counts what it received
(requests, statuses, arrival times, the most requests in flight at once).

Control endpoint (JSON): GET /_sim/state, POST /_sim/config
{"service": "openai", "latency_ms": 200, ...}, POST /_sim/reset,
POST /_sim/reset-counters, POST /_sim/paddle-event (send a signed Paddle
webhook to the app: simulator_paddle.py). `python manage.py provider_simulator`
serves it and drives it (see that command).

The simulator listens on loopback only, and a web page the developer visits
must not drive it: every control request carries the shared secret in the
X-Simulator-Secret header (a page cannot add it to a simple cross-site
request), POSTs must be application/json (which a form cannot send without a
CORS preflight the simulator never answers), and a Host header that is not a
loopback name is refused, so DNS rebinding cannot read the sent emails.

Built on the standard library's ThreadingHTTPServer: it needs no dependency,
a thread per request is what lets it hold hanging requests open, and a test
can start one in-process on port 0."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import json
import logging
import math
import secrets
import socket
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from resilience.providers import SERVICES
from resilience.providers.simulator_paddle import send_paddle_event

logger = logging.getLogger("calliq.simulator")

TIMESTAMPS_KEPT = 5000
TOPICS = ["pricing", "demo", "timeline", "budget", "integration", "security", "onboarding", "competition", "contract"]
PLANS = ["starter", "growth", "enterprise"]
SECRET_HEADER = "X-Simulator-Secret"
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]"})


def is_loopback_host(host: str) -> bool:
    """A bind address on this machine only: localhost or a loopback IP."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str:
    """The name part of a Host header ("[::1]:8765" -> "[::1]", "localhost:80" -> "localhost")."""
    header = header.strip().lower()
    if header.startswith("["):
        return header.partition("]")[0] + "]"
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


@dataclasses.dataclass
class Knobs:
    latency_ms: float = 0.0
    failure_rate: float = 0.0
    failure_status: int = 503
    fail_next: int = 0
    outage: bool = False
    timeout: bool = False
    hang_seconds: float = 60.0
    rate_limit: bool = False
    retry_after: float = 1.0


@dataclasses.dataclass
class Counters:
    requests: int = 0
    in_flight: int = 0
    max_in_flight: int = 0
    statuses: dict[str, int] = dataclasses.field(default_factory=dict)
    timestamps: list[float] = dataclasses.field(default_factory=list)
    deduplicated: int = 0
    # AssemblyAI uploads: bytes received and how many came chunked (streamed).
    upload_bytes: int = 0
    chunked_uploads: int = 0


def _hash(text: str) -> int:
    return int(hashlib.sha256(text.encode()).hexdigest()[:12], 16)


class SimulatorState:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.knobs = {s: Knobs() for s in SERVICES}
        self.counters = {s: Counters() for s in SERVICES}
        self.transcripts: dict[str, str] = {}
        self.emails: dict[str, dict] = {}
        self.sent: list[dict] = []
        self.paddle_webhooks: list[dict] = []  # {"event_id", "status"} per delivery

    def configure(self, service: str, values: dict) -> dict:
        fields = {f.name: f.type for f in dataclasses.fields(Knobs)}
        unknown = set(values) - set(fields)
        if unknown:
            raise ValueError(f"unknown knob(s): {', '.join(sorted(unknown))}")
        with self.lock:
            knobs = self.knobs[service]
            for name, value in values.items():
                current = getattr(knobs, name)
                setattr(knobs, name, type(current)(value))
            return dataclasses.asdict(knobs)

    def reset_counters(self) -> None:
        with self.lock:
            self.counters = {s: Counters() for s in SERVICES}
            self.sent = []
            self.paddle_webhooks = []

    def reset(self) -> None:
        with self.lock:
            self.knobs = {s: Knobs() for s in SERVICES}
            self.transcripts.clear()
            self.emails.clear()
        self.reset_counters()

    def snapshot(self) -> dict:
        with self.lock:
            return {
                "services": {
                    s: {"knobs": dataclasses.asdict(self.knobs[s]), "counters": dataclasses.asdict(self.counters[s])}
                    for s in SERVICES
                },
                "emails_sent": list(self.sent),
                "paddle_webhooks": list(self.paddle_webhooks),
            }

    def arrive(self, service: str) -> tuple[Knobs, int]:
        with self.lock:
            c = self.counters[service]
            c.requests += 1
            c.in_flight += 1
            c.max_in_flight = max(c.max_in_flight, c.in_flight)
            c.timestamps.append(time.time())
            del c.timestamps[:-TIMESTAMPS_KEPT]
            return dataclasses.replace(self.knobs[service]), c.requests

    def leave(self, service: str, status: int) -> None:
        with self.lock:
            c = self.counters[service]
            c.in_flight -= 1
            c.statuses[str(status)] = c.statuses.get(str(status), 0) + 1

    def take_forced_failure(self, service: str) -> bool:
        with self.lock:
            knobs = self.knobs[service]
            if knobs.fail_next > 0:
                knobs.fail_next -= 1
                return True
            return False


class Handler(BaseHTTPRequestHandler):
    server: SimulatorServer
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's
    # algorithm and delayed ACKs add ~40 ms to every answer.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args)

    # -- plumbing ---------------------------------------------------------------
    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("transfer-encoding") or "").lower():
            return self._chunked_body()
        length = int(self.headers.get("content-length") or 0)
        return self.rfile.read(length) if length else b""

    def _chunked_body(self) -> bytes:
        """A Transfer-Encoding: chunked body (how a streamed upload arrives)."""
        parts = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():  # trailers, then the blank line
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk

    def _json_body(self, raw: bytes) -> Any:
        try:
            return json.loads(raw or b"{}")
        except ValueError:
            return None

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("client went away before the answer")

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def _dispatch(self, method: str) -> None:
        raw = self._body()
        path = self.path.split("?", 1)[0].rstrip("/")
        parts = [p for p in path.split("/") if p]
        if host_name(self.headers.get("host") or "") not in LOOPBACK_NAMES:
            # DNS rebinding: a page on evil.example resolved to 127.0.0.1 still sends Host: evil.example.
            self._send(421, {"error": "this simulator answers loopback host names only"})
            return
        if parts and parts[0] == "_sim":
            refusal = self._control_refusal(method)
            if refusal is not None:
                self._send(*refusal)
                return
            self._control(method, parts[1:], raw)
            return
        if not parts or parts[0] not in SERVICES:
            self._send(404, {"error": f"no such service: {path}"})
            return
        service = parts[0]
        state = self.server.state
        started = time.perf_counter()
        knobs, n = state.arrive(service)
        status = 500
        try:
            status = self._serve(service, method, parts[1:], raw, knobs, n)
        finally:
            state.leave(service, status)
            logger.info("%s %s -> %s in %.0f ms", method, self.path, status, (time.perf_counter() - started) * 1000)

    def _serve(self, service: str, method: str, parts: list[str], raw: bytes, knobs: Knobs, n: int) -> int:
        state = self.server.state
        if knobs.latency_ms:
            state.stopping.wait(knobs.latency_ms / 1000)
        if knobs.timeout:
            state.stopping.wait(knobs.hang_seconds)
            self._send(504, {"error": "simulated timeout"})
            return 504
        if knobs.outage:
            self._send(503, {"error": "simulated outage"})
            return 503
        if knobs.rate_limit:
            self._send(429, {"error": "rate limited"}, {"retry-after": f"{knobs.retry_after:g}"})
            return 429
        rate = min(max(knobs.failure_rate, 0.0), 1.0)
        if state.take_forced_failure(service) or (rate and math.floor(n * rate) > math.floor((n - 1) * rate)):
            headers = {"retry-after": f"{knobs.retry_after:g}"} if knobs.failure_status == 429 else {}
            self._send(knobs.failure_status, {"error": "simulated failure"}, headers)
            return knobs.failure_status
        if not (self.headers.get("authorization") or "").strip():
            self._send(401, {"error": "missing API key"})
            return 401
        handler = getattr(self, f"_{service}")
        status, body, headers = handler(method, parts, raw)
        self._send(status, body, headers)
        return status

    # -- control ----------------------------------------------------------------
    def _control_refusal(self, method: str) -> tuple[int, dict] | None:
        sent = (self.headers.get(SECRET_HEADER) or "").encode()
        if not hmac.compare_digest(sent, self.server.secret.encode()):
            return 403, {"error": f"send the simulator's shared secret in the {SECRET_HEADER} header"}
        content_type = (self.headers.get("content-type") or "").split(";")[0].strip().lower()
        if method == "POST" and content_type != "application/json":
            return 415, {"error": "control requests must be Content-Type: application/json"}
        return None

    def _control(self, method: str, parts: list[str], raw: bytes) -> None:
        state = self.server.state
        action = parts[0] if parts else ""
        if method == "GET" and action == "state":
            self._send(200, state.snapshot())
        elif method == "POST" and action == "config":
            data = self._json_body(raw)
            if not isinstance(data, dict):
                self._send(400, {"error": "send a JSON object"})
                return
            service = data.pop("service", "all")
            targets = list(SERVICES) if service == "all" else [service]
            if not set(targets) <= set(SERVICES):
                self._send(400, {"error": f"service must be one of {', '.join(SERVICES)} or all"})
                return
            try:
                result = {s: state.configure(s, data) for s in targets}
            except (ValueError, TypeError) as exc:
                self._send(400, {"error": str(exc)})
                return
            self._send(200, result)
        elif method == "POST" and action == "reset":
            state.reset()
            self._send(200, {"ok": True})
        elif method == "POST" and action == "reset-counters":
            state.reset_counters()
            self._send(200, {"ok": True})
        elif method == "POST" and action == "paddle-event":
            self._send(
                *send_paddle_event(
                    self._json_body(raw), self.server.paddle_webhook_secret, self._record_webhook, state.stopping
                )
            )
        else:
            self._send(404, {"error": "control: GET state, POST config|reset|reset-counters|paddle-event"})

    def _record_webhook(self, event_id: str, status: int) -> None:
        state = self.server.state
        with state.lock:
            state.paddle_webhooks.append({"event_id": event_id, "status": status})
            del state.paddle_webhooks[:-500]

    # -- the four APIs ------------------------------------------------------------
    def _base(self) -> str:
        return self.server.url

    def _assemblyai(self, method: str, parts: list[str], raw: bytes) -> tuple[int, Any, dict]:
        state = self.server.state
        if method == "POST" and parts == ["v2", "upload"]:
            if not raw:
                return 400, {"error": "empty upload"}, {}
            digest = hashlib.sha256(raw).hexdigest()[:24]
            with state.lock:
                counters = state.counters["assemblyai"]
                counters.upload_bytes += len(raw)
                counters.chunked_uploads += "chunked" in (self.headers.get("transfer-encoding") or "").lower()
            return 200, {"upload_url": f"{self._base()}/assemblyai/v2/files/{digest}"}, {}
        if method == "POST" and parts == ["v2", "transcript"]:
            data = self._json_body(raw)
            if not isinstance(data, dict) or not data.get("audio_url"):
                return 400, {"error": "audio_url is required"}, {}
            transcript_id = hashlib.sha256(data["audio_url"].encode()).hexdigest()[:20]
            with state.lock:
                state.transcripts[transcript_id] = data["audio_url"]
            return 200, {"id": transcript_id, "status": "queued", "audio_url": data["audio_url"]}, {}
        if method == "GET" and len(parts) == 3 and parts[:2] == ["v2", "transcript"]:
            with state.lock:
                audio_url = state.transcripts.get(parts[2])
            if audio_url is None:
                return 404, {"error": "Transcript not found"}, {}
            utterances = make_utterances(audio_url)
            return (
                200,
                {
                    "id": parts[2],
                    "status": "completed",
                    "audio_url": audio_url,
                    "language_code": "en_us",
                    "text": " ".join(u["text"] for u in utterances),
                    "utterances": utterances,
                    "audio_duration": utterances[-1]["end"] // 1000,
                    "confidence": 0.93,
                },
                {},
            )
        return 404, {"error": "Not found"}, {}

    def _openai(self, method: str, parts: list[str], raw: bytes) -> tuple[int, Any, dict]:
        if not (method == "POST" and parts == ["v1", "chat", "completions"]):
            return 404, {"error": {"message": "Unknown path", "type": "invalid_request_error"}}, {}
        data = self._json_body(raw)
        if not isinstance(data, dict) or not data.get("model") or not isinstance(data.get("messages"), list):
            message = "model and messages are required"
            return 400, {"error": {"message": message, "type": "invalid_request_error", "param": None}}, {}
        text = " ".join(str(m.get("content", "")) for m in data["messages"] if m.get("role") == "user")
        content = json.dumps(make_analysis(text))
        tokens = max(len(text) // 4, 1)
        return (
            200,
            {
                "id": f"chatcmpl-{hashlib.sha256(text.encode()).hexdigest()[:24]}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": data["model"],
                "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
                ],
                "usage": {"prompt_tokens": tokens, "completion_tokens": 120, "total_tokens": tokens + 120},
            },
            {},
        )

    def _paddle(self, method: str, parts: list[str], raw: bytes) -> tuple[int, Any, dict]:
        meta = {"request_id": str(uuid.uuid4())}
        not_found = {
            "error": {"type": "request_error", "code": "not_found", "detail": "Entity not found"},
            "meta": meta,
        }
        if method != "GET" or len(parts) != 2:
            return 404, not_found, {}
        kind, entity_id = parts
        if kind == "subscriptions" and entity_id.startswith("sub_"):
            h = _hash(entity_id)
            plan = PLANS[h % len(PLANS)]
            return 200, {"data": make_subscription(entity_id, plan, h), "meta": meta}, {}
        if kind == "customers" and entity_id.startswith("ctm_"):
            customer = {"id": entity_id, "name": f"Customer {entity_id[4:10]}", "email": f"{entity_id}@example.com"}
            return 200, {"data": customer | {"status": "active", "locale": "en"}, "meta": meta}, {}
        return 404, not_found, {}

    def _resend(self, method: str, parts: list[str], raw: bytes) -> tuple[int, Any, dict]:
        if not (method == "POST" and parts == ["emails"]):
            return 404, {"statusCode": 404, "name": "not_found", "message": "Not found"}, {}
        data = self._json_body(raw)
        if not isinstance(data, dict) or not data.get("from") or not data.get("to") or not data.get("subject"):
            return (
                422,
                {"statusCode": 422, "name": "validation_error", "message": "from, to and subject are required"},
                {},
            )
        state = self.server.state
        key = self.headers.get("idempotency-key") or ""
        with state.lock:
            if key and key in state.emails:
                state.counters["resend"].deduplicated += 1
                return 200, {"id": state.emails[key]["id"]}, {}
            email = {"id": str(uuid.uuid4()), "to": data["to"], "subject": data["subject"], "key": key}
            if key:
                state.emails[key] = email
            state.sent.append(email)
            del state.sent[:-500]
        return 200, {"id": email["id"]}, {}


def make_utterances(seed: str) -> list[dict]:
    h = _hash(seed)
    lines = [
        ("A", "Thanks for making time today. How is the current process working for your team?"),
        ("B", "Honestly it is slow, and our managers have no view of what happens on calls."),
        ("A", "That is what we hear a lot. Would a demo next week help?"),
        ("B", f"Yes. What does pricing look like for {10 + h % 90} seats, and how long is onboarding?"),
        ("A", "Pricing is per seat; onboarding usually takes two weeks. I will send the contract details."),
        ("B", "Great, please include the security review documents too."),
    ]
    utterances, start = [], 0
    for i, (speaker, text) in enumerate(lines):
        length = 2000 + ((h >> i) % 7) * 700
        utterances.append({"speaker": speaker, "start": start, "end": start + length, "text": text, "confidence": 0.9})
        start += length + 300
    return utterances


def make_analysis(text: str) -> dict:
    h = _hash(text)
    lowered = text.lower()
    topics = [t for t in TOPICS if t in lowered] or ["discovery"]
    return {
        "summary": f"The customer discussed {', '.join(topics[:3])} and agreed on next steps.",
        "sentiment": round(((h >> 8) % 161 - 60) / 100, 2),
        "score": 40 + h % 56,
        "topics": topics,
        "action_items": [f"Follow up on {topics[0]}", "Send a recap email"],
    }


def make_subscription(subscription_id: str, plan: str, h: int) -> dict:
    return {
        "id": subscription_id,
        "status": "active",
        "customer_id": f"ctm_{subscription_id[4:]}",
        "currency_code": "USD",
        "items": [
            {
                "status": "active",
                "quantity": 5 + h % 50,
                "price": {"id": f"pri_{plan}", "description": f"CallIQ {plan.title()}", "product_id": f"pro_{plan}"},
            }
        ],
        "current_billing_period": {"starts_at": "2026-11-01T00:00:00Z", "ends_at": "2026-12-01T00:00:00Z"},
        "next_billed_at": "2026-12-01T00:00:00Z",
        "custom_data": {"plan": plan},
    }


class SimulatorServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        secret: str | None = None,
        paddle_webhook_secret: str = "sim-paddle-webhook-secret",
    ) -> None:
        if not is_loopback_host(host):
            raise ValueError(f"the provider simulator binds to loopback only, not {host!r}")
        self.state = SimulatorState()
        # No secret given: a random one, so the control endpoint is never open.
        self.secret = secret or secrets.token_urlsafe(24)
        # What the Paddle webhooks it sends are signed with (the app's PADDLE_WEBHOOK_SECRET).
        self.paddle_webhook_secret = paddle_webhook_secret
        if ":" in host.strip("[]"):
            self.address_family = socket.AF_INET6
        super().__init__((host.strip("[]"), port), Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def start(self) -> threading.Thread:
        """Serve in a daemon thread (tests, benchmarks); stop with .stop()."""
        thread = threading.Thread(target=self.serve_forever, name="provider-simulator", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self.state.stopping.set()
        self.shutdown()
        self.server_close()


class SimulatorControl:
    """Drive a running simulator through its control endpoint (with its shared secret)."""

    def __init__(self, url: str, secret: str) -> None:
        self.url = url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, timeout=5, headers={SECRET_HEADER: secret})

    def configure(self, service: str = "all", **knobs: object) -> dict:
        response = self.http.post("/_sim/config", json={"service": service, **knobs})
        response.raise_for_status()
        return response.json()

    def state(self) -> dict:
        response = self.http.get("/_sim/state")
        response.raise_for_status()
        return response.json()

    def counters(self, service: str) -> dict:
        return self.state()["services"][service]["counters"]

    def requests(self, service: str) -> int:
        return self.counters(service)["requests"]

    def reset(self) -> None:
        self.http.post("/_sim/reset", json={}).raise_for_status()

    def reset_counters(self) -> None:
        self.http.post("/_sim/reset-counters", json={}).raise_for_status()

    def paddle_event(self, url: str, **fields: object) -> dict:
        """Have the simulator send a signed Paddle webhook to `url` (fields: simulator_paddle.py)."""
        response = self.http.post("/_sim/paddle-event", json={"url": url, **fields}, timeout=30)
        response.raise_for_status()
        return response.json()

    def close(self) -> None:
        self.http.close()
