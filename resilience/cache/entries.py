"""What the cache stores: presets, keys, tags and the Entry format.

An entry is a msgpack array, never a pickle: whoever can write to Redis must
not be able to run code in the app. Values are what msgpack carries (None,
bool, int, float, str, bytes, lists, dicts; tuples come back as lists);
anything else is refused at store time (the value is served, not cached). A
value that does not decode as an entry of this format is a miss.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import msgpack

# Bump when the shape of what we store changes: a deploy then never reads an
# entry written by the previous code. CALLIQ_CACHE["KEY_VERSION"] (env
# CALLIQ_CACHE_KEY_VERSION, e.g. the release) adds to it for template changes.
KEY_VERSION = "2"
ENTRY_FORMAT = 1
EPOCH_TAG = "__epoch__"
MAX_KEY_LENGTH = 200
TAG_TTL_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class Preset:
    ttl: int
    per_user: bool = False

    @property
    def grace(self) -> int:
        """How long after expiry a stale copy may be served while one process recomputes."""
        return max(10, self.ttl // 2)


PRESETS: dict[str, Preset] = {
    "short": Preset(ttl=60),
    "medium": Preset(ttl=300),
    "long": Preset(ttl=3600),
    # Keyed by organization and principal, and tagged with the user's generation
    # (bumped at sign-in, sign-out and when the user's rights change).
    "per_user": Preset(ttl=300, per_user=True),
}


def resolve_preset(preset: str | Preset | None, ttl: int | None) -> Preset:
    if isinstance(preset, Preset):
        return preset
    if preset is None:
        return Preset(ttl=ttl if ttl is not None else PRESETS["medium"].ttl)
    if preset not in PRESETS:
        raise ValueError(f"Unknown cache preset {preset!r}; use one of {', '.join(PRESETS)}.")
    chosen = PRESETS[preset]
    return Preset(ttl=ttl, per_user=chosen.per_user) if ttl is not None else chosen


def user_tag(user_id: int) -> str:
    """The tag every per-user entry carries: bumping it is the user's new generation."""
    return f"user:{user_id}"


def build_key(*parts: object) -> str:
    """A stable key from parts: readable when short, hashed past MAX_KEY_LENGTH."""
    raw = ":".join(str(p).replace(":", "%3A") for p in parts)
    if len(raw) <= MAX_KEY_LENGTH:
        return raw
    return f"{raw[:80]}~{hashlib.sha256(raw.encode()).hexdigest()}"


def all_tags(tags: Any) -> tuple[str, ...]:
    """The tags an entry is checked against: the outage epoch, then its own, sorted."""
    return (EPOCH_TAG, *sorted(set(tags)))


@dataclass(frozen=True)
class Entry:
    value: Any
    versions: tuple[int, ...]
    tags: tuple[str, ...]
    fresh_until: float

    def matches(self, tags: tuple[str, ...], versions: tuple[int, ...]) -> bool:
        """Computed under the tag versions in force now: no invalidation since."""
        return self.tags == tags and self.versions == versions

    def is_fresh(self, tags: tuple[str, ...], versions: tuple[int, ...], now: float | None = None) -> bool:
        """The one freshness rule: same tags, same versions, within its TTL."""
        return self.matches(tags, versions) and self.fresh_until > (time.time() if now is None else now)

    def encode(self) -> bytes:
        return msgpack.packb(
            [ENTRY_FORMAT, self.value, list(self.versions), list(self.tags), self.fresh_until], use_bin_type=True
        )

    @classmethod
    def decode(cls, raw: bytes) -> Entry | None:
        """The entry, or None for anything that is not one (a foreign or hostile value)."""
        try:
            fmt, value, versions, tags, fresh_until = msgpack.unpackb(raw, raw=False, strict_map_key=False)
        except Exception:  # any malformed bytes: a miss, never an error
            return None
        if (
            fmt != ENTRY_FORMAT
            or not isinstance(versions, list)
            or not isinstance(tags, list)
            or not isinstance(fresh_until, int | float)
        ):
            return None
        return cls(value=value, versions=tuple(versions), tags=tuple(tags), fresh_until=float(fresh_until))
