"""A page entry rewritten straight in Redis by whoever can write there is a
miss (the page is computed), never a 500 and never served: wrong types, a
header with CR/LF, a status Django refuses."""

from __future__ import annotations

import pytest
from django.urls import reverse

from resilience.cache import cache_service
from resilience.cache.decorators import NAMESPACE
from resilience.cache.entries import Entry
from tests.resilience import cache_fixtures

fresh_cache_state = cache_fixtures.fresh_cache_state

HOSTILE = {
    "etag not a str": {"etag": 123},
    "etag with CR/LF": {"etag": 'W/"x"\r\nSet-Cookie: sessionid=evil'},
    "header value with CR/LF": {"headers": [["X-Evil", "a\r\nSet-Cookie: sessionid=evil"]]},
    "header name not a str": {"headers": [[1, "x"]]},
    "header not a pair": {"headers": [["Content-Type"]]},
    "headers not a list": {"headers": "Content-Type"},
    "body a str": {"body": "<h1>not bytes</h1>"},
    "gzip an int": {"gzip": 5},
    "br a str": {"br": "not bytes"},
    "status out of range": {"status": 99999},
    "status a bool": {"status": True},
    "status a str": {"status": "200"},
    "vary not names": {"vary": [1]},
    "vary with CR/LF": {"vary": ["Cookie\r\nX: y"]},
    "not a dict": None,
}


def rewrite_entry(change: dict | None) -> None:
    service = cache_service()
    keys = list(service.client.scan_iter(match=f"{service.prefix}e:*:{NAMESPACE}:*"))
    assert len(keys) == 1
    entry = Entry.decode(service.client.get(keys[0]))
    value = ["a", "list"] if change is None else {**entry.value, **change}
    hostile = Entry(value=value, versions=entry.versions, tags=entry.tags, fresh_until=entry.fresh_until)
    service.client.set(keys[0], hostile.encode(), keepttl=True)


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_hostile_entry_is_a_miss_never_a_500(signed_in, call, case):
    url = reverse("calls:detail", args=[call.pk])
    first = signed_in.get(url)
    assert (first.status_code, first["X-Cache"]) == (200, "MISS")
    rewrite_entry(HOSTILE[case])
    answer = signed_in.get(url, headers={"Accept-Encoding": "br, gzip"})
    assert answer.status_code == 200
    assert answer["X-Cache"] == "BYPASS"
    if not answer.has_header("Content-Encoding"):
        assert call.title in answer.content.decode()
    assert "evil" not in str(answer.headers)
    assert "evil" not in str(answer.cookies)
