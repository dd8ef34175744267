"""Listening in a real browser: a real WAV recording served with Range
requests, transcript turns that seek it by mouse and keyboard, the spoken
turn marked, topics that jump to their turn, ?t= and #t-, and a renewed URL."""

from __future__ import annotations

import io
import math
import struct
import wave

import pytest
from django.core.files.base import ContentFile
from playwright.sync_api import Page, expect

from tests import factories
from tests.e2e.conftest import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECONDS = 24
RATE = 8000
# Two speakers taking turns every 2 s: turn n runs from 2n to 2n + 2 seconds.
UTTERANCES = [
    {
        "speaker": "AB"[n % 2],
        "start_ms": n * 2000,
        "end_ms": n * 2000 + 2000,
        "text": {5: "Let us talk about pricing for your team.", 9: "I will send the proposal on Friday."}.get(
            n, f"Sentence number {n} of the call."
        ),
    }
    for n in range(SECONDS // 2)
]


def wav_bytes(seconds: int = SECONDS) -> bytes:
    """A mono 16-bit PCM tone, which Chromium plays and seeks without codecs."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        frames = (int(8000 * math.sin(2 * math.pi * 440 * i / RATE)) for i in range(seconds * RATE))
        out.writeframes(b"".join(struct.pack("<h", f) for f in frames))
    return buffer.getvalue()


@pytest.fixture
def playing_page(page: Page) -> Page:
    """The signed-in browser page, noting each recording response's Range header and status.
    Clicks and key presses are user gestures, so Chromium's autoplay policy lets them play."""
    page.ranges = []
    page.on(
        "response",
        lambda r: page.ranges.append((r.request.headers.get("range"), r.status)) if "/recording/" in r.url else None,
    )
    return page


@pytest.fixture
def recorded_call(settings, tmp_path, org, member):
    settings.MEDIA_ROOT = tmp_path
    call = factories.make_call(org, rep=member.user, title="Pricing call with Initech", duration_seconds=SECONDS)
    call.recording.save("pricing.wav", ContentFile(wav_bytes()))
    factories.make_transcript(call, UTTERANCES)
    factories.make_analysis(call, topics=["pricing"], action_items=["Send the proposal"])
    return call


def current_time(page: Page) -> float:
    return page.eval_on_selector("audio", "a => a.currentTime")


def open_call(page: Page, member, call, suffix: str = "") -> None:
    sign_in(page, member.user.username)
    page.wait_for_url("**/calls/")
    page.goto(call.get_absolute_url() + suffix)
    page.wait_for_function("() => document.querySelector('audio').readyState >= 1")


def turn(page: Page, n: int):
    return page.locator(f"#turn-{n} button.turn")


def test_clicking_a_turn_seeks_the_audio_and_the_spoken_turn_is_marked(playing_page, member, recorded_call):
    page = playing_page
    open_call(page, member, recorded_call)
    assert current_time(page) == 0
    turn(page, 4).click()
    page.wait_for_function("() => document.querySelector('audio').currentTime >= 8")
    expect(turn(page, 4)).to_have_attribute("aria-current", "true")
    # It plays on: the mark follows the voice to the next turn, and leaves the last.
    page.wait_for_function("() => document.querySelector('audio').currentTime >= 10.2")
    expect(turn(page, 5)).to_have_attribute("aria-current", "true")
    expect(turn(page, 4)).not_to_have_attribute("aria-current", "true")
    assert page.locator("button.turn[aria-current]").count() == 1
    # Chromium fetched the recording with Range requests, answered with 206.
    assert any(header and status == 206 for header, status in page.ranges)
    assert page.csp_violations == []


def test_enter_and_space_on_a_focused_turn_seek_too(playing_page, member, recorded_call):
    page = playing_page
    open_call(page, member, recorded_call)
    page.eval_on_selector("audio", "a => { a.pause(); }")
    turn(page, 8).focus()
    page.keyboard.press("Enter")
    page.wait_for_function("() => Math.abs(document.querySelector('audio').currentTime - 16) < 1.5")
    page.keyboard.press("Tab")  # the next turn's button is the next stop
    expect(turn(page, 9)).to_be_focused()
    page.keyboard.press("Space")
    page.wait_for_function("() => Math.abs(document.querySelector('audio').currentTime - 18) < 1.5")
    # Focus is visible: the focused turn draws an outline.
    outline = turn(page, 9).evaluate("b => getComputedStyle(b).outlineStyle")
    assert outline != "none"


def test_a_topic_jumps_to_the_turn_it_came_from(playing_page, member, recorded_call):
    page = playing_page
    open_call(page, member, recorded_call)
    page.get_by_role("link", name="pricing").click()
    page.wait_for_function("() => document.querySelector('audio').currentTime >= 10")
    expect(turn(page, 5)).to_be_focused()
    page.get_by_role("link", name="Send the proposal").click()
    page.wait_for_function("() => document.querySelector('audio').currentTime >= 18")
    expect(turn(page, 9)).to_be_focused()


@pytest.mark.parametrize(("suffix", "seconds"), [("?t=14", 14), ("#t-6", 6)])
def test_the_page_url_sets_where_playback_starts(playing_page, member, recorded_call, suffix, seconds):
    page = playing_page
    open_call(page, member, recorded_call, suffix)
    page.wait_for_function(f"() => Math.abs(document.querySelector('audio').currentTime - {seconds}) < 0.5")
    assert page.eval_on_selector("audio", "a => a.paused")  # positioned, not started
    expect(turn(page, seconds // 2)).to_have_attribute("aria-current", "true")


def test_an_expired_url_is_renewed_and_playback_position_kept(playing_page, member, recorded_call):
    page = playing_page
    open_call(page, member, recorded_call)
    turn(page, 3).click()
    page.wait_for_function("() => document.querySelector('audio').currentTime >= 6")
    page.eval_on_selector("audio", "a => { a.pause(); a.src = a.src.replace(/sig=[^&]+/, 'sig=expired'); }")
    # The refused URL makes the element fail; the player fetches a fresh one and goes back to the spot.
    page.wait_for_function("() => !document.querySelector('audio').src.includes('sig=expired')")
    page.wait_for_function("() => document.querySelector('audio').readyState >= 1")
    page.wait_for_function("() => document.querySelector('audio').currentTime >= 6")
    assert any(status == 403 for _, status in page.ranges)
