"""The OpenAPI 3.1 document of the JSON API (/api/v1), served at
/api/v1/openapi.json.

Written by hand as data: the API is a few read-only operations whose views
build plain dicts, so there is no serializer layer to generate it from. It is
kept true by tests/calliq/test_openapi.py, which validates real responses of
every operation against it and fuzzes every operation with schemathesis.

Who may read it: the same people as the API it describes (a session with an
organization, or a valid token). It holds no tenant data, but the API is not
public, and whoever integrates with it already holds a token.

One operation has its own credential: GET /monitoring/metrics is read with the
monitoring token (CALLIQ_MONITORING_TOKEN) or a staff session, never with a
user's API token (resilience.monitoring.access)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse, JsonResponse
from django.views.decorators.http import require_safe

from analytics.forms import RANGE_CHOICES
from analytics.forms import SORT_CHOICES as LEADERBOARD_SORT_CHOICES
from calls.filters import MODES, PAGE_SIZES
from calls.forms import SORT_CHOICES
from calls.models import NAMED_OUTCOMES, OUTCOME_UNKNOWN, SENTIMENTS, Call
from calls.search import FILTER_PARAMS, MAX_QUERY_LENGTH
from calls.tenancy.decorators import api_organization_required
from calls.tenancy.http import OrgRequest

# Ids are PostgreSQL bigints (users: integers); larger values are a 400 or 404, never an overflow.
MAX_ID = 2**63 - 1


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def obj(properties: dict[str, Any], *, optional: tuple[str, ...] = ()) -> dict[str, Any]:
    required = [name for name in properties if name not in optional]
    return {"type": "object", "properties": properties, "required": required}


def error_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": ref("Error")}}}


def query(name: str, schema: dict[str, Any], description: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description} | extra


DATE = {"type": "string", "format": "date"}
INTEGER = {"type": "integer"}
NUMBER = {"type": "number"}
STRING = {"type": "string"}

COMMON_ERRORS = {
    "401": error_response("No session and no valid token."),
    "403": error_response("The account belongs to no organization, or the token may not do this."),
    "429": error_response("Too many requests for this token; see Retry-After."),
}

SCHEMAS: dict[str, Any] = {
    "Error": obj(
        {
            "error": obj(
                {
                    "code": STRING,
                    "message": STRING,
                    "fields": {"type": "object", "additionalProperties": {"type": "array", "items": STRING}},
                }
            )
        }
    ),
    "Call": obj(
        {
            "id": INTEGER,
            "url": STRING,
            "title": STRING,
            "customer": obj({"name": STRING, "company": STRING}),
            "rep": nullable(obj({"id": INTEGER, "name": STRING})),
            "direction": {"enum": list(Call.Direction.values)},
            "started_at": {"type": "string", "format": "date-time"},
            "duration_seconds": INTEGER,
            "status": {"enum": list(Call.Status.values)},
            "outcome": {"enum": [value for value in Call.Outcome.values if value] + [None]},
            "score": nullable({"type": "integer", "minimum": 0, "maximum": 100}),
            "sentiment": nullable({"type": "number", "minimum": -1, "maximum": 1}),
            "talk_ratio": nullable({"type": "number", "minimum": 0, "maximum": 1}),
        }
    ),
    "Analysis": obj(
        {
            "summary": STRING,
            "topics": {"type": "array", "items": STRING},
            "action_items": {"type": "array", "items": STRING},
            "score": nullable(INTEGER),
            "sentiment": nullable(NUMBER),
            "talk_ratio": nullable(NUMBER),
            "question_count": nullable(INTEGER),
            "longest_monologue_seconds": nullable(INTEGER),
        }
    ),
    "CallDetail": {
        "allOf": [ref("Call"), obj({"analysis": nullable(ref("Analysis"))})],
    },
    "CallPage": obj(
        {
            "results": {"type": "array", "items": ref("Call")},
            "next": nullable({"type": "string", "format": "uri"}),
            "previous": nullable({"type": "string", "format": "uri"}),
            "sort": {"enum": [value for value, _ in SORT_CHOICES]},
            "size": {"enum": list(PAGE_SIZES)},
            "total": obj({"value": INTEGER, "exact": {"type": "boolean"}}),
        }
    ),
    "SearchTurn": obj(
        {
            "speaker": STRING,
            "start_ms": INTEGER,
            "end_ms": INTEGER,
            "text": STRING,
            "html": {"type": "string", "description": "The text, escaped, with <mark> around the matches."},
            "exact": {"type": "boolean", "description": "The turn matches the whole query, not one of its words."},
            "url": {"type": "string", "description": "The call's page at this turn's second."},
        }
    ),
    "SearchResult": {
        "allOf": [
            ref("Call"),
            obj(
                {
                    "rank": NUMBER,
                    "matching_turns": {"type": "integer", "minimum": 0},
                    "turns": {"type": "array", "items": ref("SearchTurn")},
                }
            ),
        ],
    },
    "SearchPage": obj(
        {
            "query": STRING,
            "results": {"type": "array", "items": ref("SearchResult")},
            "next": nullable({"type": "string", "format": "uri"}),
        }
    ),
    "MonitoringDenied": obj({"error": {"const": "forbidden"}, "detail": STRING}),
    "Chart": obj(
        {
            "title": STRING,
            "unit": STRING,
            "points": {
                "type": "array",
                "items": {"type": "array", "prefixItems": [STRING, nullable(NUMBER)], "minItems": 2, "maxItems": 2},
            },
        }
    ),
    "MonitoringSection": {
        "type": "object",
        "description": "One monitoring page's data; `available` is false while Redis is away.",
        "properties": {"available": {"type": "boolean"}, "charts": {"type": "array", "items": ref("Chart")}},
        "required": ["charts"],
    },
    "Metrics": obj(
        {
            "generated_at": {"type": "string", "format": "date-time"},
            "routes": ref("MonitoringSection"),
            "slow": ref("MonitoringSection"),
            "alerts": ref("MonitoringSection"),
            "business": {
                "allOf": [
                    ref("MonitoringSection"),
                    obj({"gauges": {"type": "object", "additionalProperties": NUMBER}}),
                ]
            },
        }
    ),
    "Kpi": obj(
        {
            "key": STRING,
            "label": STRING,
            "unit": STRING,
            "value": nullable(NUMBER),
            "previous": nullable(NUMBER),
            "change": nullable(NUMBER),
            "change_ratio": nullable(NUMBER),
            "better": nullable({"type": "boolean"}),
        }
    ),
    "DailyAverage": obj({"day": DATE, "average": nullable(NUMBER), "calls": INTEGER}),
    "Comprehensive": obj(
        {
            "organization": obj({"id": INTEGER, "slug": STRING, "name": STRING}),
            "range": obj({"from": DATE, "to": DATE, "days": INTEGER, "previous_from": DATE, "previous_to": DATE}),
            "filters": obj({"rep": nullable(INTEGER), "outcome": nullable(STRING), "sort": STRING}),
            "kpis": {"type": "array", "items": ref("Kpi")},
            "outcomes": {"type": "array", "items": obj({"key": STRING, "label": STRING})},
            "calls_per_day": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"day": DATE, "total": INTEGER},
                    "required": ["day", "total"],
                    "additionalProperties": INTEGER,
                },
            },
            "score_trend": {"type": "array", "items": ref("DailyAverage")},
            "sentiment_trend": {"type": "array", "items": ref("DailyAverage")},
            "sentiment_distribution": {
                "type": "array",
                "items": obj({"bucket": INTEGER, "label": STRING, "range": STRING, "calls": INTEGER}),
            },
            "leaderboard": {
                "type": "array",
                "items": obj(
                    {
                        "rep_id": nullable(INTEGER),
                        "name": STRING,
                        "calls": INTEGER,
                        "talk_time_seconds": INTEGER,
                        "average_score": nullable(NUMBER),
                        "talk_ratio": nullable(NUMBER),
                        "won": INTEGER,
                        "lost": INTEGER,
                        "win_rate": nullable(NUMBER),
                    }
                ),
            },
            "topics": {
                "type": "array",
                "items": obj(
                    {
                        "topic": STRING,
                        "calls": INTEGER,
                        "previous_calls": INTEGER,
                        "change": INTEGER,
                        "change_ratio": nullable(NUMBER),
                        "daily": {"type": "array", "items": INTEGER},
                    }
                ),
            },
            "heatmap": obj(
                {
                    "weekdays": {"type": "array", "items": STRING},
                    "hours": {"type": "array", "items": INTEGER},
                    "calls": {"type": "array", "items": {"type": "array", "items": INTEGER}},
                }
            ),
        }
    ),
}

CALL_LIST_PARAMETERS = [
    query("q", {"type": "string", "maxLength": 200}, "Search title, customer and company (3 characters or more)."),
    query(
        "status",
        {"type": "array", "items": {"enum": list(Call.Status.values)}},
        "Any of these statuses.",
        style="form",
        explode=True,
    ),
    query("outcome", {"enum": [v for v in Call.Outcome.values if v] + [OUTCOME_UNKNOWN]}, "Outcome."),
    query("rep", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, "The rep's user id."),
    query("started_from", DATE, "First day (YYYY-MM-DD, years 1900-2999)."),
    query("started_to", DATE, "Last day (YYYY-MM-DD, years 1900-2999)."),
    query("score_min", {"type": "integer", "minimum": 0, "maximum": 100}, "Lowest score."),
    query("score_max", {"type": "integer", "minimum": 0, "maximum": 100}, "Highest score."),
    query("sentiment", {"enum": list(SENTIMENTS)}, "Sentiment bucket."),
    query("sort", {"enum": [value for value, _ in SORT_CHOICES]}, "Sort column, '-' for descending."),
    query("size", {"enum": list(PAGE_SIZES)}, "Rows per page."),
    query("mode", {"enum": list(MODES)}, "Ignored by the API (a display mode of the dashboard)."),
    query("cursor", STRING, "An opaque cursor from `next` or `previous`."),
]

SEARCH_PARAMETERS = [
    query(
        "q",
        {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_LENGTH},
        'What was said, in web search syntax: words, "a phrase", or, -word.',
        required=True,
        example="pricing",
    ),
    *(parameter for parameter in CALL_LIST_PARAMETERS if parameter["name"] in FILTER_PARAMS),
    query("cursor", STRING, "An opaque cursor from `next`."),
]

ANALYTICS_PARAMETERS = [
    query("days", {"enum": [value for value, _ in RANGE_CHOICES]}, "A range ending today (or custom with from/to)."),
    query("from", DATE, "First day of a custom range (at most 366 days)."),
    query("to", DATE, "Last day of a custom range."),
    query("rep", {"type": "integer", "minimum": 1, "maximum": 2**31 - 1}, "A member's user id."),
    query("outcome", {"enum": [key for key, _ in NAMED_OUTCOMES]}, "Outcome."),
    query("sort", {"enum": [value for value, _ in LEADERBOARD_SORT_CHOICES]}, "Leaderboard sort."),
]


def openapi_document() -> dict[str, Any]:
    """The document, as a dict (the JSON served at /api/v1/openapi.json)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "CallIQ API",
            "version": "1",
            "description": "Read-only JSON API over an organization's calls and analytics. "
            "Authenticate with a personal token (Authorization: Bearer ciq_…) or a session.",
        },
        "servers": [{"url": "/api/v1"}],
        "security": [{"token": []}, {"session": []}],
        "paths": {
            "/calls": {
                "get": {
                    "operationId": "listCalls",
                    "summary": "The organization's calls, filtered, sorted and paged by keyset cursor.",
                    "parameters": CALL_LIST_PARAMETERS,
                    "responses": {
                        "200": {
                            "description": "A page of calls.",
                            "content": {"application/json": {"schema": ref("CallPage")}},
                        },
                        "400": error_response("A parameter or the cursor is not valid (see error.fields)."),
                        **COMMON_ERRORS,
                    },
                }
            },
            "/calls/search": {
                "get": {
                    "operationId": "searchCalls",
                    "summary": "Calls whose transcripts match a query, best first, with the matching turns.",
                    "parameters": SEARCH_PARAMETERS,
                    "responses": {
                        "200": {
                            "description": "A page of matching calls.",
                            "content": {"application/json": {"schema": ref("SearchPage")}},
                        },
                        "400": error_response(
                            "No query, a query with nothing to look for, a filter or the cursor not valid "
                            "(see error.fields)."
                        ),
                        **COMMON_ERRORS,
                    },
                }
            },
            "/calls/{call_id}": {
                "get": {
                    "operationId": "getCall",
                    "summary": "One call with its analysis.",
                    "parameters": [
                        {
                            "name": "call_id",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer", "minimum": 0, "maximum": MAX_ID},
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The call.",
                            "content": {"application/json": {"schema": ref("CallDetail")}},
                        },
                        "404": error_response("No such call in this organization."),
                        **COMMON_ERRORS,
                    },
                }
            },
            "/analytics/comprehensive": {
                "get": {
                    "operationId": "getAnalytics",
                    "summary": "KPIs, trends, leaderboard, topics and heatmap over a date range.",
                    "parameters": ANALYTICS_PARAMETERS,
                    "responses": {
                        "200": {
                            "description": "The analytics.",
                            "content": {"application/json": {"schema": ref("Comprehensive")}},
                        },
                        "400": error_response("A parameter is not valid (see error.fields)."),
                        **COMMON_ERRORS,
                    },
                }
            },
            "/monitoring/metrics": {
                "get": {
                    "operationId": "getMonitoringMetrics",
                    "summary": "What the monitoring pages show: routes, slow operations, alerts, business gauges.",
                    "security": [{"monitoring": []}, {"session": []}],
                    "responses": {
                        "200": {
                            "description": "The metrics.",
                            "content": {"application/json": {"schema": ref("Metrics")}},
                        },
                        "401": error_response("A Bearer credential that is neither the monitoring token nor valid."),
                        "403": {
                            "description": "Neither the monitoring token nor a staff session (a user's API token "
                            "is refused).",
                            "content": {"application/json": {"schema": ref("MonitoringDenied")}},
                        },
                        "429": error_response("Too many requests for this token; see Retry-After."),
                    },
                }
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document.",
                    "responses": {
                        "200": {
                            "description": "The OpenAPI document.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        },
                        **COMMON_ERRORS,
                    },
                }
            },
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "token": {"type": "http", "scheme": "bearer", "description": "A personal API token (ciq_…)."},
                "session": {"type": "apiKey", "in": "cookie", "name": "sessionid"},
                "monitoring": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The monitoring token (CALLIQ_MONITORING_TOKEN); only for /monitoring/metrics. "
                    "A session must be staff's.",
                },
            },
        },
    }


@require_safe
@api_organization_required
def openapi_json(request: OrgRequest) -> HttpResponse:
    return JsonResponse(openapi_document(), json_dumps_params={"indent": 1})
