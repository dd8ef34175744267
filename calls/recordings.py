"""Listening to a call: signed, short-lived recording URLs and the view that
streams the stored file with HTTP Range support.

There is no public media path. A recording is reached only through
`calls:recording`, whose `?sig=` is a TimestampSigner signature over
(call id, user id, organization id): it expires after URL_MAX_AGE and is
worthless to anyone but the user it was made for. The signature alone is not
enough: at serve time the signed-in user must still be that user and still a
member of the call's organization (a membership ended five minutes ago ends
listening at once). Bearer tokens mean nothing here (they are API-only
credentials, calls/tenancy/middleware.py).

The call detail page is cached per user (up to its TTL, plus the grace in
which a stale copy may be served), so the URL in a cached page must outlive
that: URL_MAX_AGE is well past it (tests/calls/test_recordings.py checks the
margin). A person who listens longer than that gets a fresh URL from
`calls:recording_link`, an uncached JSON endpoint the player calls when the
audio element reports an error (static/js/player.js).

Range parsing is werkzeug's (`parse_range_header`); resolving a single range
against the file's size is ours, because werkzeug's `range_for_length` answers
"unsatisfiable" for a suffix longer than the file, which RFC 9110 §14.1.2 says
selects the whole file. Multiple ranges are answered with the whole file (200),
which RFC 9110 allows; a malformed Range header is ignored (200) as it requires;
a well-formed range that starts past the end is a 416 with `Content-Range: bytes */size`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import IO
from urllib.parse import urlencode

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core import signing
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from werkzeug.http import parse_range_header

from calls.models import Call
from calls.tenancy.decorators import organization_required
from calls.tenancy.http import OrgRequest
from calls.tenancy.models import Membership

SALT = "calls.recording"
# Far longer than the detail page's cache TTL + grace (300 s + 150 s): a page
# served from the cache always carries a URL with minutes left.
URL_MAX_AGE = timedelta(minutes=15)
CHUNK_SIZE = 64 * 1024

# By the stored name's extension (the upload form only accepts these, and
# sniffs the content); browsers need the right type to play.
AUDIO_TYPES = {
    "mp3": "audio/mpeg",
    "wav": "audio/wav",
    "m4a": "audio/mp4",
    "mp4": "audio/mp4",
    "ogg": "audio/ogg",
    "oga": "audio/ogg",
    "webm": "audio/webm",
    "flac": "audio/flac",
    "aac": "audio/aac",
}


@dataclass(frozen=True)
class Grant:
    """What a valid signature allows: this user, this call, in this organization."""

    call_id: int
    user_id: int
    organization_id: int


def sign_grant(grant: Grant) -> str:
    value = f"{grant.call_id}:{grant.user_id}:{grant.organization_id}"
    return signing.TimestampSigner(salt=SALT).sign(value)


def read_grant(signature: str) -> Grant | None:
    """The grant a signature carries, or None when it is forged, altered or older than URL_MAX_AGE."""
    try:
        value = signing.TimestampSigner(salt=SALT).unsign(signature, max_age=URL_MAX_AGE)
    except signing.BadSignature:  # SignatureExpired is a BadSignature
        return None
    try:
        call_id, user_id, organization_id = (int(part) for part in value.split(":"))
    except ValueError:
        return None
    return Grant(call_id=call_id, user_id=user_id, organization_id=organization_id)


def recording_url(call: Call, user: AbstractBaseUser) -> str | None:
    """A signed URL of the call's recording for `user`, or None when it has no recording."""
    if not call.recording:
        return None
    grant = Grant(call_id=call.pk, user_id=user.pk, organization_id=call.organization_id)
    return f"{reverse('calls:recording', args=[call.pk])}?{urlencode({'sig': sign_grant(grant)})}"


def granted_call(grant: Grant, user: AbstractBaseUser | AnonymousUser) -> Call | None:
    """The call the grant opens for this user now, or None. Checked at every
    request, not just at signing: the user is the signed one, still active and
    still a member of the call's organization, and the call is still in it."""
    if not user.is_authenticated or not user.is_active or grant.user_id != user.pk:
        return None
    if not Membership.objects.filter(user=user, organization_id=grant.organization_id).exists():
        return None
    calls = Call.objects.filter(organization_id=grant.organization_id).exclude(recording="")
    return calls.filter(pk=grant.call_id).first()


def plain_response(status: int, message: str) -> HttpResponse:
    response = HttpResponse(message, status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "private, no-store"
    return response


def content_type(name: str) -> str:
    extension = os.path.splitext(name)[1].lower().lstrip(".")
    return AUDIO_TYPES.get(extension, "application/octet-stream")


class ByteRangeUnsatisfiable(Exception):
    pass


def resolve_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The [start, stop) byte range the Range header asks for, or None for the
    whole file (no header, malformed, several ranges, not bytes). Raises
    ByteRangeUnsatisfiable when it is well formed but selects nothing."""
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        return None
    start, stop = parsed.ranges[0]
    if start < 0:  # suffix: the last -start bytes, the whole file if it is shorter
        start, stop = max(0, size + start), size
    stop = size if stop is None else min(stop, size)
    if start >= size:
        raise ByteRangeUnsatisfiable
    return start, stop


class FileSlice:
    """Iterates over bytes [start, stop) of an open file in chunks; Django calls
    close() when the response is done, even when the client left before the
    first chunk was read."""

    def __init__(self, file: IO[bytes], start: int, stop: int) -> None:
        self.file, self.start, self.stop = file, start, stop

    def __iter__(self) -> Iterator[bytes]:
        self.file.seek(self.start)
        left = self.stop - self.start
        while left > 0:
            chunk = self.file.read(min(CHUNK_SIZE, left))
            if not chunk:
                return
            left -= len(chunk)
            yield chunk

    def close(self) -> None:
        self.file.close()


def recording_response(call: Call, range_header: str | None) -> HttpResponse:
    """The recording as a 200 (whole file), 206 (one range) or 416, streamed from storage."""
    size = call.recording.size
    kind = content_type(call.recording.name)
    try:
        byte_range = resolve_range(range_header, size)
    except ByteRangeUnsatisfiable:
        response = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
    else:
        file = call.recording.open("rb")
        if byte_range is None:
            response = FileResponse(file, content_type=kind)
        else:
            start, stop = byte_range
            response = StreamingHttpResponse(FileSlice(file, start, stop), status=206, content_type=kind)
            response["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
            response["Content-Length"] = str(stop - start)
    response["Accept-Ranges"] = "bytes"
    # One person's credentialed bytes: no browser or proxy cache keeps them.
    response["Cache-Control"] = "private, no-store"
    return response


@require_safe
def recording(request: HttpRequest, call_id: int) -> HttpResponse:
    """Stream a call's recording to the user its signed URL was made for, while
    they are a member of its organization. Forged, expired or someone else's
    signature: 403; the call (or its recording) out of reach: 404."""
    grant = read_grant(request.GET.get("sig", ""))
    if grant is None or grant.call_id != call_id or grant.user_id != request.user.pk:
        return plain_response(403, "This recording link is invalid or has expired: reload the call's page.")
    call = granted_call(grant, request.user)
    if call is None:
        return plain_response(404, "Recording not found.")
    try:
        return recording_response(call, request.headers.get("Range"))
    except OSError:
        # The row names a file the storage no longer has (or cannot read): the page still works.
        return plain_response(404, "The recording's file is missing from storage.")


@require_safe
@never_cache
@organization_required
def recording_link(request: OrgRequest, call_id: int) -> JsonResponse:
    """A fresh signed URL for the current user (the player asks when its URL
    has expired during a long listen). Never cached: each answer is new."""
    call = get_object_or_404(Call.objects.for_org(request.organization).exclude(recording=""), pk=call_id)
    return JsonResponse({"url": recording_url(call, request.user), "expires_in": int(URL_MAX_AGE.total_seconds())})
