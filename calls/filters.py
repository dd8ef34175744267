"""The calls dashboard's view state, all of it in the URL: filters, sort,
page size, mode and cursor, and how they become a query string again.

Parsing a query string into this state goes through calls.forms.CallListForm
(calls.forms.parse_listing), so invalid values are reported, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

from django.db.models import Q
from django.utils import timezone
from django.utils.http import urlencode

from calls.models import SENTIMENTS, SearchContains, outcome_value, sentiment_band_q

SORT_COLUMNS: dict[str, str] = {
    "started": "started_at",
    "duration": "duration_seconds",
    "score": "score",
    "sentiment": "sentiment",
}
NULLABLE_SORTS = frozenset({"score", "sentiment"})
DEFAULT_SORT = "-started"
PAGE_SIZES = (25, 50, 100, 200)
DEFAULT_PAGE_SIZE = 50
MODES = ("pages", "scroll")
# The table's state in the query string: the form's fields, then the page cursor.
FILTER_FIELDS = (
    "q",
    "status",
    "outcome",
    "rep",
    "started_from",
    "started_to",
    "score_min",
    "score_max",
    "sentiment",
    "sort",
    "size",
    "mode",
)
LISTING_PARAMS = (*FILTER_FIELDS, "cursor")
SEARCH_MIN_LENGTH = 3  # a trigram index needs three characters to narrow anything down


@dataclass(frozen=True)
class Sort:
    key: str = "started"
    descending: bool = True

    @classmethod
    def parse(cls, param: str) -> Sort:
        """`-score` → score, descending. Unknown keys raise ValueError."""
        key = param.removeprefix("-")
        if key not in SORT_COLUMNS:
            raise ValueError(param)
        return cls(key=key, descending=param.startswith("-"))

    @property
    def param(self) -> str:
        return f"-{self.key}" if self.descending else self.key

    @property
    def column(self) -> str:
        return SORT_COLUMNS[self.key]

    @property
    def nullable(self) -> bool:
        return self.key in NULLABLE_SORTS


@dataclass(frozen=True)
class CallFilters:
    """What narrows the table down. Parsed by calls.forms.CallListForm."""

    statuses: tuple[str, ...] = ()
    outcome: str | None = None  # an outcome value, or calls.models.OUTCOME_UNKNOWN
    rep: int | None = None
    started_from: date | None = None
    started_to: date | None = None  # inclusive
    score_min: int | None = None
    score_max: int | None = None
    sentiment: str | None = None
    q: str = ""

    def to_q(self) -> Q:
        q = Q()
        if self.statuses:
            q &= Q(status__in=self.statuses)
        if self.outcome is not None:
            q &= Q(outcome=outcome_value(self.outcome))
        if self.rep is not None:
            q &= Q(rep_id=self.rep)
        if self.started_from is not None:
            q &= Q(started_at__gte=local_midnight(self.started_from))
        if self.started_to is not None:
            q &= Q(started_at__lt=local_midnight(self.started_to + timedelta(days=1)))
        if self.score_min is not None:
            q &= Q(score__gte=self.score_min)
        if self.score_max is not None:
            q &= Q(score__lte=self.score_max)
        if self.sentiment in SENTIMENTS:
            q &= sentiment_band_q(self.sentiment)
        if self.q:
            q &= Q(SearchContains(self.q))
        return q

    def params(self) -> list[tuple[str, str]]:
        """The filter as query-string pairs, in a fixed order (so equal filters give equal strings)."""
        pairs = [("status", status) for status in sorted(set(self.statuses))]
        for name in ("outcome", "rep", "started_from", "started_to", "score_min", "score_max", "sentiment", "q"):
            value = getattr(self, name)
            if value is not None and value != "":
                pairs.append((name, value.isoformat() if isinstance(value, date) else str(value)))
        return pairs

    @property
    def querystring(self) -> str:
        return urlencode(self.params())

    @property
    def is_active(self) -> bool:
        return bool(self.params())


def local_midnight(day: date) -> datetime:
    return timezone.make_aware(datetime.combine(day, time.min))


@dataclass(frozen=True)
class Listing:
    """Everything a table request asks for; all of it lives in the URL."""

    filters: CallFilters = field(default_factory=CallFilters)
    sort: Sort = field(default_factory=Sort)
    size: int = DEFAULT_PAGE_SIZE
    mode: str = "pages"
    cursor: str = ""
    errors: dict[str, list[str]] = field(default_factory=dict)

    def params(self, **changes: Any) -> list[tuple[str, str]]:
        """Query-string pairs of this view state; `changes` override sort/size/mode/cursor.
        Defaults are left out so URLs stay short."""
        state = replace(self, **changes) if changes else self
        pairs = state.filters.params()
        if state.sort.param != DEFAULT_SORT:
            pairs.append(("sort", state.sort.param))
        if state.size != DEFAULT_PAGE_SIZE:
            pairs.append(("size", str(state.size)))
        if state.mode != "pages":
            pairs.append(("mode", state.mode))
        if state.cursor:
            pairs.append(("cursor", state.cursor))
        return pairs

    def url(self, path: str, **changes: Any) -> str:
        query = urlencode(self.params(**changes))
        return f"{path}?{query}" if query else path
