"""Content-Security-Policy violation reports, ingested into the error
tracker's groups: one group per (directive, blocked origin).

Browsers send two formats: `report-uri` posts `application/csp-report`
({"csp-report": {...}}, kebab-case keys) and the Reporting API (`report-to`
+ the Reporting-Endpoints header) posts `application/reports+json` (a list of
{"type": "csp-violation", "body": {...}}, camelCase keys). Only a few fields
are kept, reduced to origins and paths: a blocked URL or a document URL can
carry tokens in its query string, and `sample` can carry page text."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone

from resilience.models import ErrorGroup
from resilience.monitoring.errors import hash_parts, organization_id_of
from resilience.monitoring.scrub import scrub, scrub_text

CONTENT_TYPES = {"application/csp-report", "application/reports+json", "application/json"}
MAX_BODY = 64 * 1024
MAX_REPORTS = 20
# Anyone can post reports, so what becomes a group name is bounded: known
# directives only, and past MAX_CSP_GROUPS groups a new origin joins "other".
DIRECTIVES = frozenset(
    [
        "default-src",
        "script-src",
        "script-src-elem",
        "script-src-attr",
        "style-src",
        "style-src-elem",
        "style-src-attr",
        "img-src",
        "connect-src",
        "font-src",
        "object-src",
        "media-src",
        "frame-src",
        "child-src",
        "worker-src",
        "manifest-src",
        "base-uri",
        "form-action",
        "frame-ancestors",
        "navigate-to",
        "require-trusted-types-for",
        "trusted-types",
        "upgrade-insecure-requests",
    ]
)
MAX_CSP_GROUPS = 200
KEYWORDS = {"inline", "eval", "wasm-eval", "self", "trusted-types-policy", "trusted-types-sink"}


class ReportError(ValueError):
    """A body that is not a CSP report: the message is sent back with a 400."""


def origin_of(uri: object) -> str:
    """`https://host:port` of a URL, the keyword of a non-URL (inline, eval),
    or the scheme alone (data:, blob:): never a path or a query string."""
    if not isinstance(uri, str) or not uri:
        return "none"
    if uri in KEYWORDS:
        return uri
    parts = urlsplit(uri)
    if parts.scheme in {"http", "https", "ws", "wss"} and parts.hostname:
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{parts.hostname}{port}"
    scheme = re.match(r"^[a-z][a-z0-9+.-]{0,20}", uri.lower())
    return f"{scheme.group(0)}:" if scheme else "other"


def path_of(uri: object) -> str:
    return scrub_text(urlsplit(uri).path[:200]) if isinstance(uri, str) else ""


def _field(body: dict, *names: str) -> Any:
    for name in names:
        if name in body:
            return body[name]
    return None


def _violation(body: object) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ReportError("a report body must be a JSON object")
    directive = _field(body, "effective-directive", "effectiveDirective", "violated-directive", "violatedDirective")
    directive = directive.split()[0] if isinstance(directive, str) and directive.strip() else ""
    if directive not in DIRECTIVES:
        raise ReportError("the report names no known CSP directive")
    line = _field(body, "line-number", "lineNumber")
    return {
        "directive": directive,
        "blocked": origin_of(_field(body, "blocked-uri", "blockedURL")),
        "document": path_of(_field(body, "document-uri", "documentURL")),
        "source_file": origin_of(_field(body, "source-file", "sourceFile")),
        "line": line if isinstance(line, int) and not isinstance(line, bool) else None,
        "disposition": "report" if _field(body, "disposition") == "report" else "enforce",
    }


def parse_reports(content_type: str, raw: bytes) -> list[dict[str, Any]]:
    """The violations in one request body (at most MAX_REPORTS)."""
    try:
        payload = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ReportError("the body is not JSON") from exc
    if isinstance(payload, dict) and "csp-report" in payload:
        return [_violation(payload["csp-report"])]
    if isinstance(payload, list):
        if len(payload) > MAX_REPORTS:
            raise ReportError(f"at most {MAX_REPORTS} reports per request")
        reports = [r for r in payload if isinstance(r, dict) and r.get("type") == "csp-violation"]
        if not reports:
            raise ReportError("no csp-violation report in the list")
        return [_violation(report.get("body")) for report in reports]
    raise ReportError(f"not a CSP report ({content_type})")


def _bounded_parts(directive: str, blocked: str) -> list[str]:
    parts = ["csp", directive, blocked]
    if ErrorGroup.objects.filter(fingerprint=hash_parts(parts)).exists():
        return parts
    if ErrorGroup.objects.filter(kind=ErrorGroup.Kind.CSP).count() >= MAX_CSP_GROUPS:
        return ["csp", directive, "other"]
    return parts


def violation_event(violation: dict[str, Any], request: HttpRequest) -> dict:
    parts = _bounded_parts(violation["directive"], violation["blocked"])
    at = timezone.now().isoformat()
    sample = {
        "source": "csp",
        "at": at,
        **violation,
        "user_agent": request.headers.get("User-Agent", "")[:200],
        "organization_id": organization_id_of(request),
    }
    return {
        "fingerprint": hash_parts(parts),
        "parts": parts,
        "kind": ErrorGroup.Kind.CSP,
        "title": f"CSP {violation['directive']} blocked {parts[2]}"[:300],
        "culprit": violation["document"][:300],
        "organization_id": organization_id_of(request),
        "at": at,
        "sample": scrub(sample),
    }


class ReportingEndpointsMiddleware:
    """Names the CSP report endpoint for the Reporting API (`report-to csp` in
    the policy); `report-uri` covers browsers without it."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.get("Content-Type", "").startswith("text/html"):
            endpoint = request.build_absolute_uri(reverse("monitoring:csp-report"))
            response.headers.setdefault("Reporting-Endpoints", f'csp="{endpoint}"')
        return response
