"""An outage's pending invalidations stay bounded: once the epoch (which every
entry carries) is pending, other tags add nothing."""

from __future__ import annotations

from resilience.cache.entries import EPOCH_TAG
from resilience.cache.outage import Outage


def test_once_the_epoch_is_pending_other_tags_are_dropped():
    outage = Outage("bounded")
    outage.add(["org:1", "call:7"])
    assert outage.snapshot() == {"org:1", "call:7"}  # healthy: every tag is kept
    outage.add([EPOCH_TAG])
    assert outage.snapshot() == {EPOCH_TAG}
    outage.add(f"call:{n}" for n in range(10_000))
    assert outage.snapshot() == {EPOCH_TAG}
    assert outage.down


def test_tags_added_while_a_replay_is_in_flight_are_kept():
    outage = Outage("in-flight")
    outage.add([EPOCH_TAG])
    with outage.replaying:
        # The in-flight bump may have landed before this write committed.
        outage.add(["org:2"])
    assert outage.snapshot() == {EPOCH_TAG, "org:2"}
    outage.replayed({EPOCH_TAG})
    assert outage.snapshot() == {"org:2"}
