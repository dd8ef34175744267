"""Request body limits enforced before a body is read, so a multi-GB POST can
neither fill the disk nor tie up a worker.

UploadLimitMiddleware runs its check in process_view, ahead of
CsrfViewMiddleware (which reads request.POST, and so the whole multipart body,
before any view runs). Every request gets settings.MAX_REQUEST_BODY_SIZE; a
view decorated with @upload_limit(n) gets n instead. A Content-Length over the
limit is answered 413 without reading a byte. The LimitedUploadHandler
installed in front of Django's own handlers counts the file bytes that
actually arrive and stops parsing at the limit, whatever the headers said;
the temporary file Django had started is closed (and so deleted).

Django's FileUploadHandler is the documented hook for this; no maintained
library does more than these few lines."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler, StopUpload
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat

View = Callable[..., HttpResponse]


def upload_limit(max_bytes: int) -> Callable[[View], View]:
    """Let a view accept bodies up to max_bytes (the default limit is settings.MAX_REQUEST_BODY_SIZE)."""

    def mark(view: View) -> View:
        view.upload_limit = max_bytes  # type: ignore[attr-defined]
        return view

    return mark


class LimitedUploadHandler(FileUploadHandler):
    """Counts uploaded file bytes and stops the upload once they pass the limit.
    It stores nothing itself: chunks go on to the next handler."""

    def __init__(self, request: HttpRequest, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data: bytes, start: int) -> bytes:
        self.received += len(raw_data)
        if self.received > self.limit:
            self.exceeded = True
            # connection_reset: do not read (and discard) the rest of the body either.
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size: int) -> None:
        return None  # the next handler makes the UploadedFile


def too_large(request: HttpRequest, limit: int) -> HttpResponse:
    message = f"The request is larger than {filesizeformat(limit)}, the most this page accepts. Nothing was stored."
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": "too_large", "message": message, "fields": {}}}, status=413)
    response = render(request, "413.html", {"message": message}, status=413)
    # The rest of the body was never read: the connection cannot carry another request.
    response["Connection"] = "close"
    return response


def content_length(request: HttpRequest) -> int | None:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return None


class UploadLimitMiddleware:
    """Refuses oversized bodies before any middleware or view reads them (see module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view: View, args: Any, kwargs: Any) -> HttpResponse | None:
        limit = settings.MAX_REQUEST_BODY_SIZE
        # A larger allowance is for people signed in: an anonymous POST to the
        # upload page must not get a recording's worth of disk before the login check.
        if hasattr(view, "upload_limit") and request.user.is_authenticated:
            limit = view.upload_limit
        length = content_length(request)
        if length is None:
            return bad_length(request)
        if length > limit:
            return too_large(request, limit)
        if not request.content_type.startswith("multipart/"):
            return None
        handler = LimitedUploadHandler(request, limit)
        request.upload_handlers = [handler, *request.upload_handlers]
        try:
            request.POST  # noqa: B018 - parse now, through the limit, before CSRF or the view does
        except MultiPartParserError:
            return bad_body(request)
        if handler.exceeded:
            return too_large(request, limit)
        return None


def bad_length(request: HttpRequest) -> HttpResponse:
    return error_400(request, "The Content-Length header is not a number.")


def bad_body(request: HttpRequest) -> HttpResponse:
    return error_400(request, "The form data could not be read (malformed multipart body).")


def error_400(request: HttpRequest, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        return JsonResponse({"error": {"code": "bad_request", "message": message, "fields": {}}}, status=400)
    return render(request, "400.html", {"message": message}, status=400)
