"""Response compression: brotli or gzip, chosen by Accept-Encoding.

Django's GZipMiddleware only speaks gzip; whitenoise compresses static files
but not views. This middleware keeps GZipMiddleware's rules (skip responses
that are short, already encoded or not worth it; Vary: Accept-Encoding; weaken
strong ETags; gzip with Django's random-padding mitigation against BREACH) and
adds brotli (the `brotli` package) for text responses of ~1 KB or more.
Streaming responses are compressed chunk by chunk; file responses are left to
whitenoise. Responses from @cached_view hits arrive already encoded (the
compressed forms are stored with the entry) and pass through untouched.

Place it above every middleware that reads or writes the response body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import brotli
from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.utils.cache import patch_vary_headers
from django.utils.text import compress_sequence, compress_string

MIN_SIZE = 1024
GZIP_RANDOM_BYTES = 100  # the same padding Django's GZipMiddleware uses
COMPRESSIBLE_TYPES = (
    "text/",
    "application/json",
    "application/javascript",
    "application/xml",
    "application/xhtml+xml",
    "image/svg+xml",
)


def brotli_quality() -> int:
    # 11 is for static files compressed once; 4-5 is the usual choice per request.
    return int(getattr(settings, "CALLIQ_BROTLI_QUALITY", 5))


def parse_accept_encoding(header: str) -> dict[str, float]:
    """{"br": 1.0, "gzip": 0.5, ...}: codings with their q-values (q=0 means refused)."""
    accepted: dict[str, float] = {}
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        accepted[coding] = q
    return accepted


def choose_encoding(header: str, available: Iterable[str] = ("br", "gzip")) -> str | None:
    """The best coding the client accepts among `available` (brotli wins ties), or None."""
    accepted = parse_accept_encoding(header)
    best: str | None = None
    best_q = 0.0
    for coding in available:
        q = accepted.get(coding, accepted.get("*", 0.0))
        if q > best_q:
            best, best_q = coding, q
    return best


def compress_brotli(data: bytes) -> bytes:
    return brotli.compress(data, quality=brotli_quality(), mode=brotli.MODE_TEXT)


def compress_gzip(data: bytes) -> bytes:
    return compress_string(data, max_random_bytes=GZIP_RANDOM_BYTES)


def is_compressible(response: HttpResponse) -> bool:
    content_type = response.get("Content-Type", "").lower()
    return content_type.startswith(COMPRESSIBLE_TYPES) and not response.has_header("Content-Encoding")


def _brotli_stream(chunks: Iterable[bytes]) -> Iterator[bytes]:
    compressor = brotli.Compressor(quality=brotli_quality(), mode=brotli.MODE_TEXT)
    for chunk in chunks:
        out = compressor.process(chunk)
        if out:
            yield out
    yield compressor.finish()


class CompressionMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        return compress_response(request, response)


def compress_response(request: HttpRequest, response: HttpResponse) -> HttpResponse:
    if isinstance(response, FileResponse) or not is_compressible(response):
        return response
    if not response.streaming and len(response.content) < MIN_SIZE:
        return response
    if isinstance(response, StreamingHttpResponse) and response.is_async:
        # Async streams pass through: nothing in CallIQ serves one under WSGI.
        return response

    patch_vary_headers(response, ("Accept-Encoding",))
    coding = choose_encoding(request.headers.get("Accept-Encoding", ""))
    if coding is None:
        return response

    if response.streaming:
        if coding == "br":
            response.streaming_content = _brotli_stream(response.streaming_content)
        else:
            response.streaming_content = compress_sequence(
                response.streaming_content, max_random_bytes=GZIP_RANDOM_BYTES
            )
        del response.headers["Content-Length"]
    else:
        compressed = compress_brotli(response.content) if coding == "br" else compress_gzip(response.content)
        if len(compressed) >= len(response.content):
            return response
        response.content = compressed
        response.headers["Content-Length"] = str(len(compressed))

    etag = response.get("ETag")
    if etag and etag.startswith('"'):
        response.headers["ETag"] = "W/" + etag
    response.headers["Content-Encoding"] = coding
    return response
