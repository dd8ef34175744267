"""Listening along on the call detail: turns, the speaker timeline and
topics/action items linked to the turns they came from (calls/listen.py)."""

from __future__ import annotations

from django.core.files.base import ContentFile
from django.test import Client

from calls.listen import link_to_turns, speaker_timeline, start_offset, stem, turns_of
from calls.models import Transcript
from tests import factories
from tests.calliq.test_security_headers import inline_code

UTTERANCES = [
    {"speaker": "A", "start_ms": 0, "end_ms": 4000, "text": "Thanks for joining. How is your team doing?"},
    {"speaker": "B", "start_ms": 4200, "end_ms": 9000, "text": "Fine. What does the pricing look like for us?"},
    {"speaker": "A", "start_ms": 9300, "end_ms": 15000, "text": "Prices are per seat, and I will send a proposal."},
    {"speaker": "B", "start_ms": 15200, "end_ms": 20000, "text": "We also use a competitor today, Gong."},
    {"speaker": "A", "start_ms": 20500, "end_ms": 26000, "text": "Our team can schedule a demo of the integration."},
]


def turns():
    return turns_of(Transcript(utterances=UTTERANCES))


def test_stems_meet_across_word_forms():
    assert stem("pricing") == stem("prices") == stem("price") == "pric"
    assert stem("competitors") == stem("competitor")
    assert stem("demo") == "demo"


def test_an_item_links_to_the_turn_that_shares_its_rarest_words():
    linked = link_to_turns(["pricing", "Competitors", "Schedule a demo", "Send the proposal"], turns())
    assert [item.turn.index if item.turn else None for item in linked] == [1, 3, 4, 2]
    assert linked[0].text == "pricing"


def test_a_tie_goes_to_the_earliest_turn_and_no_match_links_nowhere():
    # "team" is in turns 0 and 4 alike: the earliest wins. "security" is said nowhere.
    linked = link_to_turns(["team", "security review", "the and of"], turns())
    assert linked[0].turn.index == 0
    assert linked[1].turn is None
    assert linked[2].turn is None  # only stopwords


def test_linking_is_deterministic():
    first = link_to_turns(["pricing", "demo", "team"], turns())
    assert all(link_to_turns(["pricing", "demo", "team"], turns()) == first for _ in range(5))


def test_malformed_utterances_are_skipped_not_fatal():
    transcript = Transcript(utterances=[{"speaker": "A", "start_ms": "x"}, "junk", UTTERANCES[0]])
    result = turns_of(transcript)
    assert [t.text for t in result] == [UTTERANCES[0]["text"]]
    assert result[0].index == 0


def test_the_timeline_has_a_lane_per_speaker_with_their_share():
    timeline = speaker_timeline(turns(), duration_seconds=30)
    assert timeline.duration_ms == 30_000
    assert [lane.speaker for lane in timeline.lanes] == ["A", "B"]
    a, b = timeline.lanes
    assert [t.index for t in a.turns] == [0, 2, 4]
    assert a.talk_ms == 4000 + 5700 + 5500
    assert round(a.share + b.share, 6) == 1
    # A call whose duration is unknown (0) still spans its last turn.
    assert speaker_timeline(turns(), duration_seconds=0).duration_ms == 26_000


def test_start_offset_accepts_seconds_only():
    assert start_offset("75") == 75.0
    assert start_offset("12.5") == 12.5
    for nonsense in (None, "", "abc", "-1", "nan", "inf", "1e9"):
        assert start_offset(nonsense) is None


def test_the_detail_page_links_topics_to_turns_and_draws_the_timeline(settings, tmp_path, org, member, call):
    settings.MEDIA_ROOT = tmp_path
    call.recording.save("call.wav", ContentFile(b"RIFF" + bytes(64)))
    factories.make_transcript(call, UTTERANCES)
    factories.make_analysis(call, topics=["pricing", "security"], action_items=["Schedule a demo"])
    browser = Client()
    browser.force_login(member.user)
    html = browser.get(call.get_absolute_url()).text
    assert 'href="#turn-1" class="turn-link" data-turn="turn-1">pricing' in html
    assert 'class="tag">security</li>' in html  # said nowhere: plain text
    assert 'href="#turn-4" class="turn-link"' in html
    assert html.count('<button type="button" class="turn"') == len(UTTERANCES)
    assert 'data-start="9.300"' in html
    assert html.count('class="timeline-seg"') == len(UTTERANCES)
    assert 'Speaker A<span class="muted"> · 3 turns' in html


def test_the_player_page_carries_no_inline_code_and_may_play_our_media(settings, tmp_path, member, call):
    settings.MEDIA_ROOT = tmp_path
    call.recording.save("call.wav", ContentFile(b"RIFF" + bytes(64)))
    factories.make_transcript(call, UTTERANCES)
    factories.make_analysis(call)
    browser = Client()
    browser.force_login(member.user)
    response = browser.get(call.get_absolute_url(), {"t": "9"})
    assert "<audio" in response.text
    assert inline_code(response.text) == []
    assert "media-src 'self'" in response["Content-Security-Policy"]
