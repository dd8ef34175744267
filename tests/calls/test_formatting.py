"""The shared figure filters: one duration and one percentage format on every page."""

import pytest
from django.template import Context, Template

from calls.templatetags.calls_extras import sentiment_word, timestamp_ms
from calls.templatetags.formatting import duration, percent


@pytest.mark.parametrize(
    ("seconds", "shown"), [(None, "—"), (0, "0m 00s"), (185, "3m 05s"), (3725, "1h 02m"), (3_600_000, "1,000h 00m")]
)
def test_a_duration_reads_the_same_everywhere(seconds, shown):
    assert duration(seconds) == shown


def test_a_percentage_has_one_decimal_unless_asked_otherwise():
    assert percent(0.4235) == "42.4%"
    assert percent(0.4235, 0) == "42%"
    assert percent(None) == "—"


def test_a_recording_offset_is_a_player_clock():
    assert timestamp_ms(65_000) == "1:05"
    assert timestamp_ms(3_725_000) == "1:02:05"


@pytest.mark.parametrize(
    ("value", "word"), [(0.2, "positive"), (0.19, "neutral"), (-0.2, "neutral"), (-0.21, "negative")]
)
def test_sentiment_words_use_the_one_neutral_band(value, word):
    assert sentiment_word(value) == word


def test_calls_and_analytics_templates_load_the_same_library():
    rendered = Template("{% load formatting %}{{ s|duration }} {{ r|percent }}").render(Context({"s": 185, "r": 0.5}))
    assert rendered == "3m 05s 50.0%"
