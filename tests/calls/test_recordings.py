"""Recordings: signed short-lived URLs, HTTP Range, who may listen, and the
per-user cached detail page that carries the URL."""

from __future__ import annotations

import re
import time
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from calls import recordings
from calls.recordings import URL_MAX_AGE, Grant, read_grant, recording_url, sign_grant
from calls.tenancy.models import ApiToken, Membership
from calls.views import call_detail
from tests import factories

# 4,000 bytes in which every offset has a known value, so a wrong slice shows.
DATA = bytes((i * 7 + i // 256) % 256 for i in range(4000))


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path) -> None:
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def recorded_call(call):
    call.recording.save("call.wav", ContentFile(DATA))
    return call


@pytest.fixture
def listener(member) -> Client:
    browser = Client()
    browser.force_login(member.user)
    return browser


@pytest.fixture
def url(recorded_call, member) -> str:
    return recording_url(recorded_call, member.user)


def body(response) -> bytes:
    # Reading a streamed body to its end closes the response (and the file), as a server would.
    return b"".join(response.streaming_content) if response.streaming else response.content


def fetch(browser: Client, url: str, range_header: str | None = None):
    headers = {"Range": range_header} if range_header is not None else {}
    return browser.get(url, headers=headers)


def test_the_whole_recording_is_served_with_its_type_and_no_caching(listener, url):
    response = fetch(listener, url)
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/wav"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Cache-Control"] == "private, no-store"
    assert response["Content-Length"] == "4000"
    assert body(response) == DATA


@pytest.mark.parametrize(
    ("header", "start", "stop"),
    [
        ("bytes=0-99", 0, 100),  # the first bytes
        ("bytes=1000-1999", 1000, 2000),  # the middle
        ("bytes=-500", 3500, 4000),  # a suffix
        ("bytes=3000-", 3000, 4000),  # open-ended
        ("bytes=3900-9999", 3900, 4000),  # past the end: cut at the end
        ("bytes=-10000", 0, 4000),  # a suffix longer than the file is the whole file
        ("bytes=3999-3999", 3999, 4000),  # the last byte
    ],
)
def test_a_byte_range_is_a_206_with_exactly_those_bytes(listener, url, header, start, stop):
    response = fetch(listener, url, header)
    assert response.status_code == 206
    assert response["Content-Range"] == f"bytes {start}-{stop - 1}/4000"
    assert response["Content-Length"] == str(stop - start)
    assert response["Content-Type"] == "audio/wav"
    assert response["Accept-Ranges"] == "bytes"
    assert response["Cache-Control"] == "private, no-store"
    assert body(response) == DATA[start:stop]


@pytest.mark.parametrize("header", ["bytes=4000-", "bytes=4000-4100", "bytes=99999-"])
def test_a_range_past_the_end_is_a_416_that_names_the_size(listener, url, header):
    response = fetch(listener, url, header)
    assert response.status_code == 416
    assert response["Content-Range"] == "bytes */4000"
    assert response["Cache-Control"] == "private, no-store"
    assert DATA[:100] not in response.content


@pytest.mark.parametrize("header", ["bytes=abc", "bytes=500-100", "items=0-10", "bytes=0-1,5-9", "bytes=-0"])
def test_a_malformed_or_multiple_range_gets_the_whole_file(listener, url, header):
    # RFC 9110: a server ignores a Range it cannot parse, and may answer several with the whole file.
    response = fetch(listener, url, header)
    assert response.status_code == 200
    assert body(response) == DATA


def test_head_answers_the_headers(listener, url):
    response = listener.head(url)
    assert response.status_code == 200
    assert response["Content-Length"] == "4000"
    assert body(response) == b""


def test_signed_out_people_cannot_listen_even_with_a_valid_url(client, url):
    response = fetch(client, url)
    assert response.status_code == 403
    assert DATA[:100] not in response.content


def test_a_colleague_cannot_use_a_url_signed_for_someone_else(org, url):
    colleague = factories.make_membership(org, role=Membership.Role.MANAGER)
    browser = Client()
    browser.force_login(colleague.user)
    response = fetch(browser, url)
    assert response.status_code == 403


def test_an_expired_url_is_refused(listener, recorded_call, member, monkeypatch):
    signed_at = time.time() - URL_MAX_AGE.total_seconds() - 5
    monkeypatch.setattr(signing.time, "time", lambda: signed_at)
    old_url = recording_url(recorded_call, member.user)
    monkeypatch.undo()
    assert fetch(listener, old_url).status_code == 403


@pytest.mark.parametrize("mangle", [lambda s: s[:-1] + ("A" if s[-1] != "A" else "B"), lambda s: "", lambda s: "1:2:3"])
def test_a_tampered_or_missing_signature_is_refused(listener, recorded_call, url, mangle):
    signature = parse_qs(urlsplit(url).query)["sig"][0]
    path = reverse("calls:recording", args=[recorded_call.pk])
    response = listener.get(path, {"sig": mangle(signature)})
    assert response.status_code == 403


def test_a_url_for_one_call_does_not_open_another(listener, org, member, url):
    second = factories.make_call(org, rep=member.user)
    second.recording.save("second.wav", ContentFile(b"RIFF" + bytes(100)))
    query = urlsplit(url).query
    response = listener.get(f"{reverse('calls:recording', args=[second.pk])}?{query}")
    assert response.status_code == 403


def test_another_organizations_member_gets_nothing_even_with_a_signature_of_their_own(
    other_member, recorded_call, other_org
):
    browser = Client()
    browser.force_login(other_member.user)
    # What a signature for them would say: their user, our call, either organization. The
    # key cannot be guessed, but even a signed grant is checked against memberships.
    for organization_id in (other_org.pk, recorded_call.organization_id):
        grant = Grant(call_id=recorded_call.pk, user_id=other_member.user.pk, organization_id=organization_id)
        path = reverse("calls:recording", args=[recorded_call.pk])
        response = browser.get(path, {"sig": sign_grant(grant)})
        assert response.status_code == 404
        assert DATA[:100] not in response.content


def test_listening_stops_when_the_membership_ends(listener, member, url):
    assert fetch(listener, url).status_code == 200
    Membership.objects.filter(pk=member.pk).delete()
    assert fetch(listener, url).status_code == 404


def test_an_api_token_opens_no_recording(client, member, url):
    _, raw = ApiToken.issue(user=member.user, organization=member.organization, name="CRM sync")
    assert fetch(client, url + f"&token={raw}").status_code == 403
    response = client.get(url, headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 403
    assert DATA[:100] not in response.content


def test_a_call_without_a_recording_has_no_player_and_no_file(listener, call, member):
    assert recording_url(call, member.user) is None
    grant = Grant(call_id=call.pk, user_id=member.user.pk, organization_id=call.organization_id)
    response = listener.get(reverse("calls:recording", args=[call.pk]), {"sig": sign_grant(grant)})
    assert response.status_code == 404
    page = listener.get(call.get_absolute_url())
    assert "<audio" not in page.text
    assert "No recording is stored" in page.text


def test_there_is_no_public_media_path(listener, recorded_call):
    assert listener.get("/media/" + recorded_call.recording.name).status_code == 404


def test_the_link_endpoint_gives_a_fresh_working_url_uncached(listener, recorded_call, member):
    response = listener.get(reverse("calls:recording_link", args=[recorded_call.pk]))
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    fresh = response.json()["url"]
    assert read_grant(parse_qs(urlsplit(fresh).query)["sig"][0]) == Grant(
        recorded_call.pk, member.user.pk, recorded_call.organization_id
    )
    assert body(fetch(listener, fresh)) == DATA


def test_the_link_endpoint_is_for_members_only(client, other_member, recorded_call):
    path = reverse("calls:recording_link", args=[recorded_call.pk])
    assert client.get(path).status_code == 302  # to sign-in
    client.force_login(other_member.user)
    assert client.get(path).status_code == 404


def audio_url(html: str) -> str:
    match = re.search(r'<audio[^>]* src="([^"]+)"', html)
    assert match, "the page has no player"
    return unescape(match.group(1))


def test_the_cached_detail_page_gives_each_user_a_url_signed_for_them(org, member, listener, recorded_call):
    colleague = factories.make_membership(org, role=Membership.Role.REP)
    other = Client()
    other.force_login(colleague.user)
    page_url = recorded_call.get_absolute_url()

    assert listener.get(page_url).headers["X-Cache"] == "MISS"
    ours = listener.get(page_url)
    assert ours.headers["X-Cache"] == "HIT"
    theirs = other.get(page_url)
    assert theirs.headers["X-Cache"] == "MISS"

    our_url, their_url = audio_url(ours.text), audio_url(theirs.text)
    assert read_grant(parse_qs(urlsplit(our_url).query)["sig"][0]).user_id == member.user.pk
    assert read_grant(parse_qs(urlsplit(their_url).query)["sig"][0]).user_id == colleague.user.pk
    assert body(fetch(listener, our_url)) == DATA
    assert body(fetch(other, their_url)) == DATA
    # Each URL works only for its own user.
    assert fetch(other, our_url).status_code == 403
    assert fetch(listener, their_url).status_code == 403


def test_the_detail_page_of_another_organization_is_not_found(other_member, recorded_call):
    browser = Client()
    browser.force_login(other_member.user)
    response = browser.get(recorded_call.get_absolute_url())
    assert response.status_code == 404
    assert "/recording/" not in response.text


def test_a_url_in_a_cached_page_outlives_the_page_by_minutes():
    preset = call_detail.cached_view["preset"]
    # The longest a cached page can be served after it was rendered: its TTL and the stale grace.
    oldest_page = preset.ttl + preset.grace
    assert URL_MAX_AGE.total_seconds() >= oldest_page + 5 * 60


def test_the_detail_page_starts_where_t_says_and_ignores_nonsense(listener, recorded_call):
    page = recorded_call.get_absolute_url()
    assert 'data-start="12.500"' in listener.get(page, {"t": "12.5"}).text
    for nonsense in ("abc", "-3", "inf", "nan", "1e99"):
        response = listener.get(page, {"t": nonsense})
        assert response.status_code == 200
        assert "data-start=" not in response.text.split("data-player", 1)[1].split(">", 1)[0]


def test_content_types_follow_the_stored_name():
    assert recordings.content_type("recordings/2026/11/a.MP3") == "audio/mpeg"
    assert recordings.content_type("x.m4a") == "audio/mp4"
    assert recordings.content_type("x.exe") == "application/octet-stream"


def test_a_recording_missing_from_storage_is_a_404_not_an_error(listener, recorded_call, url):
    recorded_call.recording.storage.delete(recorded_call.recording.name)
    response = fetch(listener, url)
    assert response.status_code == 404
    assert "missing" in response.text
    assert listener.get(recorded_call.get_absolute_url()).status_code == 200
