"""`@cached_view(preset=..., tags=...)`: per-view caching of GET/HEAD 200s.

The key covers the view, the path, the normalised query string, whether the
request is an htmx partial (and its target), the organization, the user and
the principal (a session, or one API token), so tenants and principals never
share an entry. Django's cache middleware guards are kept: responses that set
cookies, are private/no-store/no-cache/max-age=0, vary on `*` or on a request
header the key does not cover, or carry queued messages are never stored.

CSRF tokens in cached HTML: an entry keeps the page as rendered (with its
brotli and gzip forms) and a copy whose masked tokens are replaced by a
per-entry marker. A reader with the same CSRF secret as the one who rendered
it (the same browser) gets the stored bytes, compressed once at store time; any
other reader of the entry gets the copy with fresh tokens of its own secret,
compressed by resilience.compression on the way out. So no reader ever gets a
token it cannot use, and no reader gets another's.

Every response gets `X-Cache: HIT|MISS|STALE|BYPASS`, a weak ETag (304 on
If-None-Match) and `Cache-Control: private, no-cache`, so browsers revalidate
and shared caches never store a per-user page.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.middleware.csrf import CSRF_TOKEN_LENGTH, _unmask_cipher_token, get_token
from django.utils.cache import cc_delim_re, get_max_age, patch_cache_control, patch_vary_headers

from resilience.cache.service import Preset, cache_service, resolve_preset, user_tag
from resilience.compression import MIN_SIZE, choose_encoding, compress_brotli, compress_gzip, is_compressible

NAMESPACE = "views"
# Request headers that the key already covers (the principal stands for Cookie
# and Authorization; every stored form is kept, so Accept-Encoding is covered).
KEYED_HEADERS = frozenset({"cookie", "authorization", "hx-request", "hx-history-restore-request", "hx-target"})
SAFE_VARY = KEYED_HEADERS | {"accept-encoding"}
TOKEN_RE = re.compile(rb"\b[A-Za-z0-9]{%d}\b" % CSRF_TOKEN_LENGTH)
DROPPED_HEADERS = frozenset({"content-length", "content-encoding", "vary", "x-cache"})


@dataclass
class CachedResponse:
    status: int
    headers: list[tuple[str, str]]
    vary: tuple[str, ...]
    body: bytes
    etag: str
    gzip: bytes | None = None
    br: bytes | None = None
    csrf_marker: bytes | None = None
    csrf_template: bytes | None = None  # body with the marker in place of each token
    csrf_owner: str | None = None  # digest of the CSRF secret the body's tokens belong to


TagSpec = Iterable[str] | Callable[..., Iterable[str]]


def cached_view(
    preset: str | Preset = "per_user",
    *,
    tags: TagSpec = (),
    ttl: int | None = None,
    vary_on: Iterable[str] = (),
    name: str | None = None,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Cache a view's 200 responses per organization, user and principal.

    `tags` are format strings filled from `org` (organization id), `user` (user
    id) and the view's URL kwargs, e.g. ["org:{org}", "call:{call_id}"], or a
    callable (request, **kwargs) -> tags. `vary_on` names further request
    headers the response depends on (their values join the key). Put it under
    the method and sign-in guards, right above the view function."""
    chosen = resolve_preset(preset, ttl)
    extra_headers = tuple(sorted(h.lower() for h in vary_on))

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        view_name = name or f"{view.__module__}.{view.__qualname__}"

        @wraps(view)
        def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            reason = bypass_reason(request)
            if reason:
                response = view(request, *args, **kwargs)
                response["X-Cache"] = "BYPASS"
                return response

            key = view_key(request, view_name, extra_headers, args, kwargs)
            entry_tags = view_tags(request, tags, chosen, kwargs)
            computed: dict[str, HttpResponse] = {}
            allowed_vary = SAFE_VARY | set(extra_headers)

            def compute() -> CachedResponse | None:
                response = view(request, *args, **kwargs)
                computed["response"] = response
                return freeze(request, response, allowed_vary)

            result = cache_service().get_or_set(
                key,
                compute,
                namespace=NAMESPACE,
                preset=chosen,
                tags=entry_tags,
                # HEAD is answered from the GET entry but never fills it.
                cacheable=lambda value: value is not None and request.method == "GET",
                view=view_name,
            )
            frozen: CachedResponse | None = result.value
            if "response" in computed:
                response = computed["response"]
                status = result.status if frozen is not None else "BYPASS"
            else:
                response = thaw(request, frozen)
                status = result.status
            return finish(request, response, frozen, status)

        wrapper.cached_view = {"name": view_name, "preset": chosen, "tags": tags}  # type: ignore[attr-defined]
        return wrapper

    return decorator


def bypass_reason(request: HttpRequest) -> str | None:
    if request.method not in ("GET", "HEAD"):
        return "method"
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or getattr(request, "organization", None) is None:
        return "anonymous"
    storage = getattr(request, "_messages", None)
    if storage is not None and len(storage):
        # A cached page would swallow (or replay) the flash message.
        return "messages"
    return None


def principal(request: HttpRequest) -> str:
    token = getattr(request, "api_token", None)
    return f"t{token.pk}" if token is not None else "s"


def view_key(
    request: HttpRequest,
    view_name: str,
    extra_headers: tuple[str, ...],
    args: tuple[object, ...],
    kwargs: dict[str, object],
) -> str:
    htmx = getattr(request, "htmx", None)
    partial = bool(htmx) and not htmx.history_restore_request
    query = urlencode(sorted((k, v) for k, values in request.GET.lists() for v in values))
    parts = [
        view_name,
        request.path,
        query,
        f"hx={htmx.target or ''}" if partial else "full",
        *(f"{h}={request.headers.get(h, '')}" for h in extra_headers),
    ]
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:40]
    return f"o{request.organization.pk}:u{request.user.pk}:{principal(request)}:{digest}"


def view_tags(request: HttpRequest, spec: TagSpec, preset: Preset, kwargs: dict[str, object]) -> list[str]:
    if callable(spec):
        tags = list(spec(request, **kwargs))
    else:
        values = {"org": request.organization.pk, "user": request.user.pk, **kwargs}
        tags = [t.format(**values) for t in spec]
    if preset.per_user:
        tags.append(user_tag(request.user.pk))
    return tags


def response_vary(response: HttpResponse) -> set[str]:
    return {h.strip().lower() for h in cc_delim_re.split(response.get("Vary", "")) if h.strip()}


def storable(request: HttpRequest, response: HttpResponse, allowed_vary: set[str]) -> bool:
    if response.status_code != 200 or response.streaming or response.cookies:
        return False
    if response.has_header("Content-Encoding"):
        return False
    cache_control = {d.strip().split("=")[0].lower() for d in cc_delim_re.split(response.get("Cache-Control", ""))}
    if cache_control & {"private", "no-store", "no-cache"} or get_max_age(response) == 0:
        return False
    vary = response_vary(response)
    if "*" in vary or not vary <= allowed_vary:
        return False
    storage = getattr(request, "_messages", None)
    return not (storage is not None and (storage.used or storage._queued_messages))


def freeze(request: HttpRequest, response: HttpResponse, allowed_vary: set[str]) -> CachedResponse | None:
    """The storable form of a response, or None when it must not be stored."""
    if not storable(request, response, allowed_vary):
        return None
    body = response.content
    template, marker, owner = None, None, None
    secret = request.META.get("CSRF_COOKIE")
    if secret and request.META.get("CSRF_COOKIE_NEEDS_UPDATE"):
        template, marker = strip_csrf_tokens(body, secret)
        owner = secret_digest(secret) if marker is not None else None
    cached = CachedResponse(
        status=response.status_code,
        headers=[(k, v) for k, v in response.headers.items() if k.lower() not in DROPPED_HEADERS],
        vary=tuple(sorted(response_vary(response))),
        body=body,
        etag=response.get("ETag") or f'W/"{hashlib.sha256(template if marker else body).hexdigest()[:32]}"',
        csrf_marker=marker,
        csrf_template=template if marker else None,
        csrf_owner=owner,
    )
    if len(body) >= MIN_SIZE and is_compressible(response):
        gz, br = compress_gzip(body), compress_brotli(body)
        cached.gzip = gz if len(gz) < len(body) else None
        cached.br = br if len(br) < len(body) else None
    return cached


def secret_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


def strip_csrf_tokens(body: bytes, secret: str) -> tuple[bytes, bytes | None]:
    """Replace every masked CSRF token of `secret` in the body by a random marker."""
    marker = f"csrf-{secrets.token_hex(16)}".encode()
    found = False

    def swap(match: re.Match[bytes]) -> bytes:
        nonlocal found
        if _unmask_cipher_token(match.group().decode()) == secret:
            found = True
            return marker
        return match.group()

    stripped = TOKEN_RE.sub(swap, body)
    return (stripped, marker) if found else (body, None)


def thaw(request: HttpRequest, cached: CachedResponse) -> HttpResponse:
    body = cached.body
    coding = None
    secret = request.META.get("CSRF_COOKIE")
    if cached.csrf_marker is not None and (not secret or secret_digest(secret) != cached.csrf_owner):
        # Another browser: its own fresh token; the middleware compresses this body.
        body = cached.csrf_template.replace(cached.csrf_marker, get_token(request).encode())
    else:
        available = [c for c in ("br", "gzip") if getattr(cached, c) is not None]
        coding = choose_encoding(request.headers.get("Accept-Encoding", ""), available) if available else None
        if coding is not None:
            body = getattr(cached, coding)
    response = HttpResponse(b"" if request.method == "HEAD" else body, status=cached.status)
    for header, value in cached.headers:
        response.headers[header] = value
    if cached.vary:
        patch_vary_headers(response, cached.vary)
    if coding is not None:
        response.headers["Content-Encoding"] = coding
        response.headers["Content-Length"] = str(len(body))
    if cached.gzip is not None or cached.br is not None:
        patch_vary_headers(response, ("Accept-Encoding",))
    return response


def etag_matches(request: HttpRequest, etag: str) -> bool:
    header = request.headers.get("If-None-Match")
    if not header:
        return False
    wanted = etag.removeprefix("W/")
    return header.strip() == "*" or any(t.strip().removeprefix("W/") == wanted for t in header.split(","))


def finish(request: HttpRequest, response: HttpResponse, cached: CachedResponse | None, status: str) -> HttpResponse:
    if cached is not None and response.status_code == 200:
        if etag_matches(request, cached.etag):
            not_modified = HttpResponseNotModified()
            not_modified["ETag"] = cached.etag
            response = not_modified
        else:
            response["ETag"] = cached.etag
    # The content depends on who asks and on htmx; shared caches must not keep it.
    patch_vary_headers(response, ("Cookie", "Authorization", "HX-Request"))
    patch_cache_control(response, private=True, no_cache=True)
    response["X-Cache"] = status
    return response
