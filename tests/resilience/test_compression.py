"""The compression middleware: brotli or gzip by Accept-Encoding, Django's gzip rules kept."""

from __future__ import annotations

import gzip

import brotli
import pytest
from django.http import FileResponse, HttpResponse, StreamingHttpResponse
from django.test import RequestFactory

from resilience.compression import choose_encoding, compress_response

BODY = ("<tr><td>Acme renewal</td><td>Initech</td></tr>\n" * 200).encode()


def request(accept: str = ""):
    return RequestFactory().get("/", headers={"Accept-Encoding": accept} if accept else {})


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("gzip, deflate, br", "br"),
        ("gzip", "gzip"),
        ("br;q=0.5, gzip;q=0.9", "gzip"),
        ("br;q=0, gzip", "gzip"),
        ("identity", None),
        ("*", "br"),
        ("gzip;q=banana", None),
        ("", None),
    ],
)
def test_the_best_accepted_coding_is_chosen(header, expected):
    assert choose_encoding(header) == expected


def test_brotli_is_served_when_accepted_and_decodes_to_the_original():
    response = compress_response(request("gzip, br"), HttpResponse(BODY))
    assert response["Content-Encoding"] == "br"
    assert brotli.decompress(response.content) == BODY
    assert response["Content-Length"] == str(len(response.content))
    assert "Accept-Encoding" in response["Vary"]


def test_gzip_is_served_to_clients_without_brotli():
    response = compress_response(request("gzip"), HttpResponse(BODY))
    assert response["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.content) == BODY


def test_short_binary_or_already_encoded_responses_are_left_alone():
    short = compress_response(request("br"), HttpResponse(b"x" * 500))
    binary = compress_response(request("br"), HttpResponse(BODY, content_type="image/png"))
    encoded = HttpResponse(b"\x00" * 2000)
    encoded["Content-Encoding"] = "br"
    passed = compress_response(request("br"), encoded)
    assert not short.has_header("Content-Encoding")
    assert not binary.has_header("Content-Encoding")
    assert passed.content == b"\x00" * 2000


def test_a_strong_etag_is_weakened_when_the_body_is_compressed():
    response = HttpResponse(BODY)
    response["ETag"] = '"abc"'
    assert compress_response(request("gzip"), response)["ETag"] == 'W/"abc"'


def test_streaming_responses_are_compressed_chunk_by_chunk():
    response = compress_response(request("br"), StreamingHttpResponse(iter([BODY, BODY])))
    assert brotli.decompress(b"".join(response.streaming_content)) == BODY + BODY
    gz = compress_response(request("gzip"), StreamingHttpResponse(iter([BODY, BODY])))
    assert gzip.decompress(b"".join(gz.streaming_content)) == BODY + BODY


def test_file_responses_are_left_to_whitenoise(tmp_path):
    path = tmp_path / "big.txt"
    path.write_bytes(BODY)
    response = compress_response(request("br"), FileResponse(path.open("rb"), content_type="text/plain"))
    assert not response.has_header("Content-Encoding")
    response.file_to_stream.close()


def test_the_middleware_compresses_real_pages(client, member, call):
    client.force_login(member.user)
    response = client.get("/calls/", headers={"Accept-Encoding": "br"})
    assert response["Content-Encoding"] == "br"
    assert call.title.encode() in brotli.decompress(response.content)
