"""Search what was said: the search a person asks for (query, the dashboard's
filters, a cursor), its pages of calls, and their cursors. How transcripts are
matched, ranked and highlighted on each database is calls.transcript_index.

Pagination is a keyset on (rank, call id), descending. Relevance is the order
people expect from a search box, and a keyset on it costs what the page-one
query costs: the rank is recomputed for every match on every page. Ordering by
(started_at, id) would not be cheaper with this index: the GIN bitmap hands
back matches in no useful order, so PostgreSQL must fetch and recheck every
match before it can sort either way, and cannot stop early. The cursor
carries the last rank (a float4: exact through JSON, compared as a real) and
id, signed, with a digest of the query and filters so it cannot be replayed
against another search. Neither order uses OFFSET.

Every query is scoped to one organization at the queryset (Call.objects.for_org).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from django.core import signing
from django.db import connection
from django.db.models import FloatField, Func, Value
from django.http import QueryDict
from django.utils.http import urlencode

from calls.filters import CallFilters
from calls.forms import parse_listing
from calls.keyset import RowComparison
from calls.models import Call
from calls.tenancy.models import Organization
from calls.transcript_index import SearchError, Turn, backend

MAX_QUERY_LENGTH = 200
PAGE_SIZE = 20
CURSOR_SALT = "calls.search.cursor"
# The dashboard's filters that apply to a search (its own `q` is the metadata search; sort and size are the table's).
FILTER_PARAMS = ("status", "outcome", "rep", "started_from", "started_to", "score_min", "score_max", "sentiment")


class InvalidCursor(SearchError):
    def __init__(self, message: str) -> None:
        super().__init__("cursor", message)


@dataclass(frozen=True)
class SearchRequest:
    """What a search asks for; all of it lives in the URL."""

    q: str = ""
    filters: CallFilters = field(default_factory=CallFilters)
    cursor: str = ""

    def params(self, cursor: str | None = None) -> list[tuple[str, str]]:
        pairs = [("q", self.q), *self.filters.params()]
        if cursor:
            pairs.append(("cursor", cursor))
        return pairs

    def url(self, path: str, cursor: str | None = None) -> str:
        return f"{path}?{urlencode(self.params(cursor))}"

    @property
    def digest(self) -> str:
        """Names this search (query and filters) inside its cursors."""
        return hashlib.blake2b(urlencode(self.params()).encode(), digest_size=8).hexdigest()


def parse_search(query: QueryDict) -> tuple[SearchRequest, dict[str, list[str]]]:
    """The search from a query string, with errors (field → messages) instead of exceptions.
    The filters are the dashboard's, parsed by its own form."""
    errors: dict[str, list[str]] = {}
    q = " ".join(query.get("q", "").split())
    if not q:
        errors["q"] = ["Type something to search for."]
    elif len(q) > MAX_QUERY_LENGTH:
        errors["q"] = [f"Searches are at most {MAX_QUERY_LENGTH} characters (this one has {len(q)})."]
    elif "\x00" in q:
        errors["q"] = ["Null characters are not allowed."]
    filter_query = QueryDict(mutable=True)
    for name in FILTER_PARAMS:
        filter_query.setlist(name, query.getlist(name))
    listing = parse_listing(filter_query)
    errors |= {name: messages for name, messages in listing.errors.items() if name in FILTER_PARAMS}
    return SearchRequest(q=q, filters=listing.filters, cursor=query.get("cursor", "").strip()), errors


@dataclass(frozen=True)
class SearchHit:
    call: Call
    rank: float
    turns: list[Turn]
    matching_turns: int  # turns matching the whole query (shown: at most TURNS_SHOWN)


@dataclass(frozen=True)
class SearchPage:
    request: SearchRequest
    hits: list[SearchHit]
    next_cursor: str | None


def search_calls(organization: Organization, request: SearchRequest, *, size: int = PAGE_SIZE) -> SearchPage:
    """One page of `organization`'s calls whose transcripts match `request`,
    best first. Raises SearchError for a query with nothing to look for and
    InvalidCursor for a cursor that is not ours or not this search's."""
    after = decode_cursor(request.cursor, request) if request.cursor else None
    index = backend()
    prepared = index.prepare(request.q)
    matching = index.matching(Call.objects.for_org(organization).filtered(request.filters), prepared)
    if after is not None:
        rank, call_id = after
        # ts_rank_cd is a float4: the cursor's rank is compared as one, or the
        # double nearest its printed digits would not equal it and a page repeat.
        if connection.vendor == "postgresql":
            rank = Func(Value(rank), template="(%(expressions)s)::real", output_field=FloatField())
        matching = matching.filter(RowComparison(("rank", "id"), "<", (rank, call_id)))
    # Two steps: rank every match carrying only (id, rank) through the sort,
    # then read the page's calls by primary key.
    ranked = list(matching.order_by("-rank", "-id").values_list("id", "rank")[: size + 1])
    more = len(ranked) > size
    ranked = ranked[:size]
    calls = Call.objects.for_org(organization).for_table().in_bulk([pk for pk, _ in ranked])
    turns = index.turns(organization, [pk for pk, _ in ranked], prepared)
    hits = [SearchHit(calls[pk], rank, *turns.get(pk, ([], 0))) for pk, rank in ranked if pk in calls]
    next_cursor = encode_cursor(hits[-1], request) if more and hits else None
    return SearchPage(request=request, hits=hits, next_cursor=next_cursor)


def encode_cursor(hit: SearchHit, request: SearchRequest) -> str:
    return signing.dumps({"r": hit.rank, "i": hit.call.pk, "h": request.digest}, salt=CURSOR_SALT)


def decode_cursor(token: str, request: SearchRequest) -> tuple[float, int]:
    try:
        payload = signing.loads(token, salt=CURSOR_SALT)
    except signing.BadSignature as exc:
        raise InvalidCursor("This page link is not valid (it may have been altered).") from exc
    if not isinstance(payload, dict) or payload.get("h") != request.digest:
        raise InvalidCursor("This page link belongs to another search.")
    rank, call_id = payload.get("r"), payload.get("i")
    if not isinstance(rank, int | float) or not isinstance(call_id, int):
        raise InvalidCursor("This page link is not valid.")
    return float(rank), call_id
