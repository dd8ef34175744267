"""What the call detail page shows to listen along with a recording: the
transcript as speaker turns, a speaker timeline (who talked when), the
analysis' topics and action items linked to the turns they came from, and the
start position asked for by `?t=<seconds>`.

Linking an item to a turn is a keyword match, deterministic and cheap:

1. The item's text and every utterance are split into lower-case words; words
   of fewer than three letters and common English words (STOPWORDS) are dropped.
2. Each word is reduced to a stem by stripping one common English suffix
   (SUFFIXES, longest first, keeping at least four letters), so "pricing",
   "prices" and "price" meet at "pric".
3. A turn scores the sum, over the item's stems it contains, of
   1 / (the number of turns containing that stem): a word said in one turn
   says more about where the item came from than one said in every turn.
4. The highest-scoring turn wins; a tie goes to the earliest turn. An item none
   of whose stems is in any turn links nowhere (the page shows it as plain text).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser

from calls.models import Call, Transcript
from calls.recordings import recording_url

WORD_RE = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# Common words that say nothing about where an item came from (split once at import).
_STOPWORDS_TEXT = """
    about after again all also and any are because been before being both but can could did does doing
    down during each few for from further had has have having her here hers him his how into its just
    more most not now off once only other our ours out over own same she should some such than that
    the their theirs them then there these they this those through too under until very was were what
    when where which while who whom why will with would you your yours yes okay yeah i'll i'm we'll
    let's it's that's don't
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())
SUFFIXES = ("ations", "ation", "ings", "ing", "ies", "ied", "es", "ed", "s", "e", "y")
MIN_STEM = 4


@dataclass(frozen=True)
class Turn:
    """One utterance: who spoke, from when to when (ms into the recording), what was said."""

    index: int
    speaker: str
    start_ms: int
    end_ms: int
    text: str

    @property
    def anchor(self) -> str:
        return f"turn-{self.index}"

    @property
    def start_seconds(self) -> str:
        """For data attributes: seconds with millisecond precision ("12.345")."""
        return f"{self.start_ms / 1000:.3f}"

    @property
    def end_seconds(self) -> str:
        return f"{self.end_ms / 1000:.3f}"

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(frozen=True)
class SpeakerLane:
    """One row of the speaker timeline: a speaker's turns and their share of the talk time."""

    speaker: str
    row: int
    turns: tuple[Turn, ...]
    talk_ms: int
    share: float

    @property
    def percent(self) -> int:
        return round(self.share * 100)

    @property
    def colour(self) -> str:
        """A CSS class; lanes are told apart by their label and row, the colour only helps."""
        return f"lane-{self.row % LANE_COLOURS}"


LANE_COLOURS = 6


@dataclass(frozen=True)
class Timeline:
    duration_ms: int
    lanes: tuple[SpeakerLane, ...]

    @property
    def playhead_width(self) -> int:
        """The playhead's width in the lanes' coordinates (ms): half a percent of the call."""
        return max(1, self.duration_ms // 200)


@dataclass(frozen=True)
class LinkedItem:
    """A topic or action item and the turn it came from (None when no turn matches)."""

    text: str
    turn: Turn | None


def turns_of(transcript: Transcript | None) -> list[Turn]:
    """The transcript's utterances as turns, skipping malformed entries rather than failing the page."""
    if transcript is None:
        return []
    turns = []
    for raw in transcript.utterances or []:
        if not isinstance(raw, Mapping):
            continue
        try:
            start, end = int(raw.get("start_ms", 0)), int(raw.get("end_ms", 0))
        except (TypeError, ValueError):
            continue
        turns.append(
            Turn(
                index=len(turns),
                speaker=str(raw.get("speaker", "?")),
                start_ms=max(0, start),
                end_ms=max(start, end),
                text=str(raw.get("text", "")),
            )
        )
    return turns


def speaker_timeline(turns: list[Turn], duration_seconds: int) -> Timeline | None:
    """Who talked when, one lane per speaker in order of first appearance."""
    if not turns:
        return None
    duration_ms = max(duration_seconds * 1000, max(t.end_ms for t in turns), 1)
    by_speaker: dict[str, list[Turn]] = {}
    for turn in turns:
        by_speaker.setdefault(turn.speaker, []).append(turn)
    total_talk = sum(t.end_ms - t.start_ms for t in turns) or 1
    lanes = []
    for row, (speaker, spoken) in enumerate(by_speaker.items()):
        talk = sum(t.end_ms - t.start_ms for t in spoken)
        lanes.append(SpeakerLane(speaker, row, tuple(spoken), talk, talk / total_talk))
    return Timeline(duration_ms=duration_ms, lanes=tuple(lanes))


def stem(word: str) -> str:
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= MIN_STEM:
            return word[: -len(suffix)]
    return word


def stems(text: str) -> set[str]:
    return {stem(w) for w in WORD_RE.findall(text.lower()) if len(w) >= 3 and w not in STOPWORDS}


def link_to_turns(items: Iterable[object], turns: list[Turn]) -> list[LinkedItem]:
    """Each item with the turn it most likely came from (module docstring)."""
    turn_stems = [stems(t.text) for t in turns]
    document_frequency: Counter[str] = Counter(s for found in turn_stems for s in found)
    linked = []
    for item in items:
        text = str(item)
        wanted = stems(text)
        best: Turn | None = None
        best_score = 0.0
        for turn, found in zip(turns, turn_stems, strict=True):
            score = sum(1 / document_frequency[s] for s in wanted & found)
            if score > best_score and not math.isclose(score, best_score):
                best, best_score = turn, score
        linked.append(LinkedItem(text=text, turn=best))
    return linked


def start_offset(raw: str | None) -> float | None:
    """`?t=` as seconds into the recording: a non-negative finite number, else None (ignored)."""
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0 or seconds > 24 * 3600:
        return None
    return seconds


def listening_context(call: Call, user: AbstractBaseUser, start: str | None) -> dict[str, object]:
    """The detail page's player, timeline, turns and linked analysis items.
    The recording URL is signed for `user`: the page is cached per user, never shared."""
    transcript = getattr(call, "transcript", None)
    analysis = getattr(call, "analysis", None)
    turns = turns_of(transcript)
    return {
        "recording_url": recording_url(call, user),
        "start_at": start_offset(start),
        "turns": turns,
        "timeline": speaker_timeline(turns, call.duration_seconds),
        "linked_topics": link_to_turns(analysis.topics if analysis else [], turns),
        "linked_action_items": link_to_turns(analysis.action_items if analysis else [], turns),
    }
