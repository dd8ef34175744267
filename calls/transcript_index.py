"""How transcripts are matched, ranked and highlighted, on each database.

PostgreSQL. Each transcript carries a stored tsvector of its utterances' text
in the text search configuration of its language (SEARCH_CONFIGS; a trigger
keeps it current, migration 0004_transcript_search) under a GIN index. A
query is parsed with websearch_to_tsquery, so people type what they would
type into a web search: `"price increase" -discount`, `competitor or
Chorusly`; it is parsed in every configuration and the distinct results are
OR-ed into one tsquery (PostgresSearch.prepare). Results are ranked by
ts_rank_cd (cover density: the query's words close together count more),
normalised by the log of the transcript's length so a long call does not win
by length alone.

The matching turns of a page's calls come from a second query over those
calls only: the utterances (jsonb_array_elements) that contain a word of the
query, those matching the whole query first, each highlighted by ts_headline.
Highlights are delimited with private-use characters (removed from the text
first), the text is HTML-escaped, and only then do the delimiters become
<mark> elements: no transcript text ever reaches the page unescaped.

SQLite (the first run): no tsvector. A case-insensitive contains match
(ASCII case only, SQLite's LIKE) over the utterances' text: every word or
"quoted phrase" must occur in some turn, `-word` must occur in none; results
are unranked (rank 0, so newest call id first under the same cursors).

Callers scope the calls to one organization (calls.search); the turns
queries take the organization too and check it again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import BooleanField, Expression, F, FloatField, QuerySet, Value
from django.urls import reverse
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from calls.models import Call, Transcript, escape_like
from calls.tenancy.models import Organization

TURNS_SHOWN = 3  # matching turns shown per call

# A transcript's language (ISO 639-1, region ignored) → PostgreSQL text search configuration.
# Kept equal to calls_search_config() in migration 0004_transcript_search (a test checks).
SEARCH_CONFIGS = {
    "en": "english",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "pt": "portuguese",
    "nl": "dutch",
}
DEFAULT_CONFIG = "english"  # a transcript without a language
FALLBACK_CONFIG = "simple"  # any other language: words as they are, no stemming, no stop words
CONFIGS = (*dict.fromkeys(SEARCH_CONFIGS.values()), FALLBACK_CONFIG)
RANK_NORMALIZATION = 1  # ts_rank_cd: divide by 1 + log(number of words)
START, STOP = "\ue000", "\ue001"  # highlight delimiters: private-use characters
HEADLINE_OPTIONS = f"StartSel={START}, StopSel={STOP}, HighlightAll=true"
# websearch_to_tsquery prints phrases as <-> or <N>; both become OR for "any word of the query".
TSQUERY_OPERATOR = r"<(?:-|\d+)>|&"


class SearchError(ValueError):
    """A search that cannot run, with the field at fault and a message for people."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Turn:
    call_id: int
    speaker: str
    start_ms: int
    end_ms: int
    marked: str  # the text with START/STOP around the matches
    exact: bool  # matches the whole query, not just one of its words

    @property
    def seconds(self) -> int:
        return self.start_ms // 1000

    @property
    def url(self) -> str:
        """The call's page at this second (the player seeks to `t`; the anchor is the turn)."""
        return f"{reverse('calls:detail', args=[self.call_id])}?t={self.seconds}#t-{self.seconds}"

    @property
    def html(self) -> SafeString:
        return highlight(self.marked)

    @property
    def text(self) -> str:
        return self.marked.replace(START, "").replace(STOP, "")


def highlight(marked: str) -> SafeString:
    """Text with START/STOP around the matches → safe HTML with <mark> around them."""
    return mark_safe(escape(marked).replace(START, "<mark>").replace(STOP, "</mark>"))  # escaped first


def no_words_message(q: str) -> str:
    if not re.search(r"\w", re.sub(r"\bor\b", "", q, flags=re.IGNORECASE)):  # "or" is an operator too
        return f"“{q}” has only operators and punctuation: type the words to look for."
    return (
        "Nothing to look for: every word is excluded with “-”, or too common to search (like “the”, “and”). "
        "Add a word the calls should contain."
    )


# --- PostgreSQL --------------------------------------------------------------------------


class _OnTranscript(Expression):
    """An expression over the joined transcript's search_vector and a tsquery
    given as text (the output of PostgresSearch.prepare): `template` gets
    {vector} and a placeholder {query}."""

    template = ""

    def __init__(self, tsquery: str) -> None:
        super().__init__()
        self.tsquery = tsquery
        self.vector = F("transcript__search_vector")

    def get_source_expressions(self) -> list[Any]:
        return [self.vector]

    def set_source_expressions(self, exprs: list[Any]) -> None:
        (self.vector,) = exprs

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        vector, params = compiler.compile(self.vector)
        return self.template.format(vector=vector, query="%s::tsquery"), [*params, self.tsquery]


class TranscriptMatch(_OnTranscript):
    """The transcript's vector matches the query: one `@@`, served by the GIN index."""

    output_field = BooleanField()
    conditional = True
    template = "{vector} @@ {query}"


class TranscriptRank(_OnTranscript):
    output_field = FloatField()
    template = f"ts_rank_cd({{vector}}, {{query}}, {RANK_NORMALIZATION})"


PREPARE_SQL = """
SELECT string_agg(DISTINCT '(' || parsed::text || ')', ' | '),
       coalesce(bool_or(config = %(default)s), false)
FROM (SELECT config, websearch_to_tsquery(config::regconfig, %(q)s) AS parsed FROM unnest(%(configs)s::text[]) config) p
WHERE querytree(parsed) NOT IN ('', 'T')
"""

TURNS_SQL = """
SELECT call_id, speaker, start_ms, end_ms, exact, exact_turns, ts_headline(config, text, query, %(options)s)
FROM (
  SELECT t.call_id, cfg.config, q.query,
         u.value->>'speaker' AS speaker,
         (u.value->>'start_ms')::bigint AS start_ms,
         (u.value->>'end_ms')::bigint AS end_ms,
         u.text,
         u.vector @@ q.query AS exact,
         count(*) FILTER (WHERE u.vector @@ q.query) OVER (PARTITION BY t.call_id) AS exact_turns,
         row_number() OVER (PARTITION BY t.call_id ORDER BY u.vector @@ q.query DESC, u.ord) AS place
  FROM calls_transcript t
  JOIN calls_call c ON c.id = t.call_id
  CROSS JOIN LATERAL (SELECT calls_search_config(t.language) AS config) cfg
  CROSS JOIN (
    SELECT %(query)s::tsquery AS query,
           regexp_replace(querytree(%(query)s::tsquery), %(operators)s, '|', 'g')::tsquery AS words
  ) q
  CROSS JOIN LATERAL (
    SELECT e.value, e.ord, translate(e.value->>'text', %(delimiters)s, '') AS text,
           to_tsvector(cfg.config, e.value->>'text') AS vector
    FROM jsonb_array_elements(t.utterances) WITH ORDINALITY e(value, ord)
  ) u
  WHERE t.call_id = ANY(%(ids)s) AND c.organization_id = %(organization)s
    AND u.vector @@ q.words
) turns
WHERE place <= %(shown)s
ORDER BY call_id, start_ms
"""


class PostgresSearch:
    def prepare(self, q: str) -> str:
        """The query as one tsquery: parsed by websearch_to_tsquery in every
        configuration in use, the distinct results OR-ed. One `@@` and one
        rank per row (a per-language CASE would decompress each candidate's
        vector once per configuration). A transcript's vector holds its own
        language's lexemes, so in practice only its language's arm matches it.
        Raises SearchError when the default language (english) finds no word
        to look for in it: every other configuration has stop words of its
        own, and in "simple" "the" or a lone "or" is a word."""
        with connection.cursor() as cursor:
            cursor.execute(PREPARE_SQL, {"q": q, "configs": list(CONFIGS), "default": DEFAULT_CONFIG})
            tsquery, has_words = cursor.fetchone()
        if not has_words or not tsquery:
            raise SearchError("q", no_words_message(q))
        return tsquery

    def matching(self, calls: QuerySet[Call], tsquery: str) -> QuerySet[Call]:
        return calls.filter(TranscriptMatch(tsquery)).annotate(rank=TranscriptRank(tsquery))

    def turns(self, organization: Organization, ids: list[int], tsquery: str) -> dict[int, tuple[list[Turn], int]]:
        if not ids:
            return {}
        params = {
            "query": tsquery,
            "ids": ids,
            "organization": organization.pk,
            "shown": TURNS_SHOWN,
            "options": HEADLINE_OPTIONS,
            "operators": TSQUERY_OPERATOR,
            "delimiters": START + STOP,
        }
        found: dict[int, tuple[list[Turn], int]] = {}
        with connection.cursor() as cursor:
            cursor.execute(TURNS_SQL, params)
            for call_id, speaker, start_ms, end_ms, exact, exact_turns, headline in cursor.fetchall():
                turns, _ = found.setdefault(call_id, ([], exact_turns))
                turns.append(Turn(call_id, speaker or "", start_ms or 0, end_ms or 0, headline, exact))
        return found


# --- SQLite ------------------------------------------------------------------------------

TERM = re.compile(r'(-?)"([^"]*)"?|(-?)(\S+)')


def parse_terms(q: str) -> tuple[list[str], list[str]]:
    """websearch-like syntax for the contains fallback: words and "phrases" to
    find, -word and -"phrase" to exclude; `or` and lone operators are ignored."""
    wanted: list[str] = []
    excluded: list[str] = []
    for match in TERM.finditer(q):
        negated = bool(match.group(1) or match.group(3))
        text = " ".join((match.group(2) if match.group(2) is not None else match.group(4)).split())
        text = text.strip("-\"'()&|!:*<> ").casefold()
        if not text or text == "or":
            continue
        (excluded if negated else wanted).append(text)
    return wanted, excluded


class AnyTurnContains(Expression):
    """SQLite: some utterance's text contains `term` (LIKE: ASCII case-insensitive)."""

    output_field = BooleanField()
    conditional = True

    def __init__(self, term: str) -> None:
        super().__init__()
        self.utterances = F("transcript__utterances")
        self.pattern = Value(f"%{escape_like(term)}%")

    def get_source_expressions(self) -> list[Any]:
        return [self.utterances, self.pattern]

    def set_source_expressions(self, exprs: list[Any]) -> None:
        self.utterances, self.pattern = exprs

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        column, column_params = compiler.compile(self.utterances)
        pattern, pattern_params = compiler.compile(self.pattern)
        sql = (
            f"EXISTS (SELECT 1 FROM json_each({column}) WHERE json_extract(value, '$.text') LIKE {pattern} ESCAPE '\\')"
        )
        return sql, [*column_params, *pattern_params]


class ContainsSearch:
    def prepare(self, q: str) -> str:
        if not parse_terms(q)[0]:
            raise SearchError("q", no_words_message(q))
        return q

    def matching(self, calls: QuerySet[Call], q: str) -> QuerySet[Call]:
        wanted, excluded = parse_terms(q)
        calls = calls.filter(transcript__isnull=False)
        for term in wanted:
            calls = calls.filter(AnyTurnContains(term))
        for term in excluded:
            calls = calls.exclude(AnyTurnContains(term))
        return calls.annotate(rank=Value(0.0, output_field=FloatField()))

    def turns(self, organization: Organization, ids: list[int], q: str) -> dict[int, tuple[list[Turn], int]]:
        wanted, _ = parse_terms(q)
        pattern = re.compile("|".join(re.escape(term) for term in sorted(wanted, key=len, reverse=True)), re.I)
        transcripts = Transcript.objects.filter(call_id__in=ids, call__organization=organization)
        found: dict[int, tuple[list[Turn], int]] = {}
        for transcript in transcripts.only("call_id", "utterances"):
            turns = []
            for utterance in transcript.utterances:
                text = str(utterance.get("text", "")).translate({ord(START): None, ord(STOP): None})
                if not pattern.search(text):
                    continue
                lowered = text.casefold()
                exact = all(term in lowered for term in wanted)
                marked = pattern.sub(lambda m: f"{START}{m.group(0)}{STOP}", text)
                start_ms, end_ms = int(utterance.get("start_ms", 0)), int(utterance.get("end_ms", 0))
                turns.append(
                    Turn(
                        transcript.call_id,
                        str(utterance.get("speaker", "")),
                        start_ms,
                        end_ms,
                        marked,
                        exact,
                    )
                )
            exact_turns = sum(turn.exact for turn in turns)
            shown = sorted(sorted(turns, key=lambda turn: not turn.exact)[:TURNS_SHOWN], key=lambda turn: turn.start_ms)
            found[transcript.call_id] = (shown, exact_turns)
        return found


POSTGRES = PostgresSearch()
SQLITE = ContainsSearch()


def backend() -> PostgresSearch | ContainsSearch:
    return POSTGRES if connection.vendor == "postgresql" else SQLITE
