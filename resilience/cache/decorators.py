"""`@cached_view(preset=..., tags=...)`: per-view caching of GET/HEAD 200s.

The key covers the view, the path, the query parameters the view declares
(`params=`, in a canonical order; the view is handed only those, so any other
parameter changes neither the key nor the page), whether the request is an
htmx partial (and its target, only for the targets a view declares it varies
on), the organization, the user and the principal (a session, or one API
token), so tenants and principals never share an entry, and a client cannot
mint entries with junk parameters or headers. Django's cache middleware guards are kept: responses that set
cookies, are private/no-store/no-cache/max-age=0, vary on `*` or on a request
header the key does not cover, or carry queued messages are never stored.

CSRF tokens in cached HTML: none are stored. The value of every hidden
`csrfmiddlewaretoken` input is blanked before the page is stored, so no
reader ever gets another's token; static/js/csrf.js sends the csrftoken
cookie's value in X-CSRFToken on htmx requests and fills the blank inputs on
submit, and a reader without the cookie gets one with the page (get_token).
Pages are stored with their brotli and gzip forms, compressed once.

Every response gets `X-Cache: HIT|MISS|STALE|BYPASS`, a weak ETag (304 on
If-None-Match through django.utils.cache.get_conditional_response) and
`Cache-Control: private, no-cache`, so browsers revalidate and shared caches
never store a per-user page.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, QueryDict
from django.middleware.csrf import get_token
from django.utils.cache import (
    cc_delim_re,
    get_conditional_response,
    get_max_age,
    patch_cache_control,
    patch_vary_headers,
)

from resilience.cache.entries import Preset, resolve_preset, user_tag
from resilience.cache.service import cache_service
from resilience.compression import MIN_SIZE, choose_encoding, compress_brotli, compress_gzip, is_compressible

NAMESPACE = "views"
# Request headers that the key already covers (the principal stands for Cookie
# and Authorization; every stored form is kept, so Accept-Encoding is covered).
KEYED_HEADERS = frozenset({"cookie", "authorization", "hx-request", "hx-history-restore-request"})
SAFE_VARY = KEYED_HEADERS | {"accept-encoding"}
# What Django's {% csrf_token %} renders; the value is blanked in stored HTML.
CSRF_INPUT_RE = re.compile(rb'(<input type="hidden" name="csrfmiddlewaretoken" value=")[^"]*(")')
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

    def to_value(self) -> dict[str, Any]:
        """A plain structure for the cache entry (msgpack: bytes stay bytes)."""
        return asdict(self)

    @classmethod
    def from_value(cls, value: Any) -> CachedResponse | None:
        """Rebuilt from an entry; None for anything not of this shape (a miss).
        Whoever can write to Redis must not be able to turn a page into a 500
        (a header with CR/LF, a status Django refuses, a body that is no bytes)."""
        if not isinstance(value, dict):
            return None
        try:
            cached = cls(**value)
        except TypeError:
            return None
        status, headers, vary = cached.status, cached.headers, cached.vary
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            return None
        if not isinstance(cached.body, bytes) or not all(
            c is None or isinstance(c, bytes) for c in (cached.gzip, cached.br)
        ):
            return None
        if not header_text(cached.etag) or not isinstance(headers, list | tuple) or not isinstance(vary, list | tuple):
            return None
        if not all(
            isinstance(pair, list | tuple)
            and len(pair) == 2
            and header_text(pair[0])
            and header_text(pair[1], empty=True)
            for pair in headers
        ):
            return None
        if not all(header_text(name) for name in vary):
            return None
        cached.headers = [(name, text) for name, text in headers]
        cached.vary = tuple(vary)
        return cached


def header_text(value: object, *, empty: bool = False) -> bool:
    """A str (non-empty unless `empty`) that can go into a header line (no CR, LF or NUL)."""
    return isinstance(value, str) and (empty or bool(value)) and not any(c in value for c in "\r\n\x00")


TagSpec = Iterable[str] | Callable[..., Iterable[str]]


def cached_view(
    preset: str | Preset = "per_user",
    *,
    tags: TagSpec = (),
    ttl: int | None = None,
    vary_on: Iterable[str] = (),
    params: Iterable[str] = (),
    targets: Iterable[str] = (),
    name: str | None = None,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Cache a view's 200 responses per organization, user and principal.

    `tags` are format strings filled from `org` (organization id), `user` (user
    id) and the view's URL kwargs, e.g. ["org:{org}", "call:{call_id}"], or a
    callable (request, **kwargs) -> tags. `vary_on` names further request
    headers the response depends on (their values join the key). `params` names
    the query parameters that make the view's state: only they join the key,
    and the view sees only them. `targets` names the HX-Target values the view
    renders differently for; a partial for any other target is not cached.
    Put it under the method and sign-in guards, right above the view function."""
    chosen = resolve_preset(preset, ttl)
    extra_headers = tuple(sorted(h.lower() for h in vary_on))
    param_names = frozenset(params)
    target_names = frozenset(targets)

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        view_name = name or f"{view.__module__}.{view.__qualname__}"

        @wraps(view)
        def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
            reason = bypass_reason(request) or target_reason(request, target_names)
            if reason:
                response = view(request, *args, **kwargs)
                response["X-Cache"] = "BYPASS"
                return response

            # The view sees only the declared parameters (its full path too, which
            # pages echo), so the key covers all it reads.
            request.GET = declared_query(request.GET, param_names)
            request.META["QUERY_STRING"] = request.GET.urlencode()
            key = view_key(request, view_name, extra_headers, target_names)
            entry_tags = view_tags(request, tags, chosen, kwargs)
            computed: dict[str, HttpResponse] = {}
            allowed_vary = SAFE_VARY | set(extra_headers) | ({"hx-target"} if target_names else set())

            def compute() -> dict[str, Any] | None:
                response = view(request, *args, **kwargs)
                computed["response"] = response
                frozen = freeze(request, response, allowed_vary)
                return frozen.to_value() if frozen is not None else None

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
            frozen = CachedResponse.from_value(result.value) if result.value is not None else None
            if "response" in computed:
                response = computed["response"]
                status = result.status if frozen is not None else "BYPASS"
            elif frozen is None:
                # An entry of another shape (or a hostile one): compute, never trust it.
                response = view(request, *args, **kwargs)
                status = "BYPASS"
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


def target_reason(request: HttpRequest, targets: frozenset[str]) -> str | None:
    """A partial for a target the view declares no variant for is not stored
    (when it declares any: otherwise the target makes no difference)."""
    htmx = getattr(request, "htmx", None)
    if targets and htmx and not htmx.history_restore_request and (htmx.target or "") not in targets:
        return "target"
    return None


def declared_query(query: QueryDict, names: frozenset[str]) -> QueryDict:
    """The query with only the declared parameters (values in their order)."""
    kept = QueryDict(mutable=True)
    for name in sorted(names & set(query.keys())):
        kept.setlist(name, query.getlist(name))
    kept._mutable = False
    return kept


def principal(request: HttpRequest) -> str:
    token = getattr(request, "api_token", None)
    return f"t{token.pk}" if token is not None else "s"


def view_key(
    request: HttpRequest,
    view_name: str,
    extra_headers: tuple[str, ...],
    targets: frozenset[str],
) -> str:
    htmx = getattr(request, "htmx", None)
    partial = bool(htmx) and not htmx.history_restore_request
    # request.GET holds only the declared parameters here, names sorted, values in order.
    query = request.GET.urlencode()
    target = (htmx.target or "") if partial and targets else ""
    parts = [
        view_name,
        request.path,
        query,
        f"hx={target}" if partial else "full",
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
    """The storable form of a response (CSRF tokens blanked), or None when it must not be stored."""
    if not storable(request, response, allowed_vary):
        return None
    body = CSRF_INPUT_RE.sub(rb"\1\2", response.content)
    cached = CachedResponse(
        status=response.status_code,
        headers=[(k, v) for k, v in response.headers.items() if k.lower() not in DROPPED_HEADERS],
        vary=tuple(sorted(response_vary(response))),
        body=body,
        etag=response.get("ETag") or f'W/"{hashlib.sha256(body).hexdigest()[:32]}"',
    )
    if len(body) >= MIN_SIZE and is_compressible(response):
        gz, br = compress_gzip(body), compress_brotli(body)
        cached.gzip = gz if len(gz) < len(body) else None
        cached.br = br if len(br) < len(body) else None
    return cached


def thaw(request: HttpRequest, cached: CachedResponse) -> HttpResponse:
    available = [c for c in ("br", "gzip") if getattr(cached, c) is not None]
    coding = choose_encoding(request.headers.get("Accept-Encoding", ""), available) if available else None
    body = getattr(cached, coding) if coding is not None else cached.body
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


def finish(request: HttpRequest, response: HttpResponse, cached: CachedResponse | None, status: str) -> HttpResponse:
    if not request.META.get("CSRF_COOKIE"):
        # The stored page has no token: a browser without the cookie gets one now.
        get_token(request)
    if cached is not None and response.status_code == 200:
        response["ETag"] = cached.etag
        response = get_conditional_response(request, etag=cached.etag, response=response)
    # The content depends on who asks and on htmx; shared caches must not keep it.
    patch_vary_headers(response, ("Cookie", "Authorization", "HX-Request"))
    patch_cache_control(response, private=True, no_cache=True)
    response["X-Cache"] = status
    return response
