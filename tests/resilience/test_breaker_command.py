"""`python manage.py breaker status|open|close|reset [NAME]`."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command

from resilience.breaker import CircuitOpenError, breaker


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("breaker", *args, stdout=out)
    return out.getvalue()


def test_status_shows_every_breaker_with_its_state(db, fast_policy):
    fast_policy("openai", open_seconds=60, failure_threshold=1)
    with pytest.raises(RuntimeError):
        breaker("openai").call(lambda: (_ for _ in ()).throw(RuntimeError("down")))
    lines = run("status").splitlines()
    assert lines[0].split()[:2] == ["breaker", "state"]
    rows = {line.split()[0]: line.split()[1] for line in lines[1:]}
    assert rows == {"assemblyai": "closed", "openai": "open", "paddle": "closed", "resend": "closed"}


def test_open_close_and_reset_control_one_breaker(db):
    assert "openai: forced_open" in run("open", "openai")
    with pytest.raises(CircuitOpenError):
        breaker("openai").call(lambda: 1)
    assert "openai: forced_closed" in run("close", "openai")
    assert breaker("openai").call(lambda: 1) == 1
    assert "openai: closed" in run("reset", "openai")
    assert breaker("openai").snapshot().shown_state == "closed"
    assert breaker("paddle").snapshot().shown_state == "closed"


def test_reset_without_a_name_resets_every_breaker(db):
    run("open", "paddle")
    run("open", "resend")
    output = run("reset")
    assert output.count(": closed") == 4
    assert breaker("paddle").snapshot().shown_state == "closed"


def test_open_without_a_name_or_an_unknown_name_is_refused_with_a_message(db):
    with pytest.raises(CommandError, match="Name the breaker"):
        run("open")
    with pytest.raises(CommandError, match="No breaker named 'stripe'"):
        run("status", "stripe")
