"""Subresource Integrity for our static files: the sha384 of each file as it
is served, computed once at collectstatic time and read by the `sri`
template tags (resilience/templatetags/sri.py).

IntegrityManifestStorage is whitenoise's compressed manifest storage that
also writes STATIC_ROOT/integrity.json ({"css/app.css": "sha384-…"}) after
post-processing, hashing the stored (hashed, URL-rewritten) copy, which is
the byte stream a browser receives. Without that file (DEBUG, tests, the
plain storage) the hash is computed from the file the storage or the finders
would serve: once per process, or on every use under DEBUG."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.staticfiles import finders
from django.contrib.staticfiles.storage import ManifestFilesMixin, staticfiles_storage
from django.core.signals import setting_changed
from django.dispatch import receiver
from whitenoise.storage import CompressedManifestStaticFilesStorage

INTEGRITY_FILE = "integrity.json"


def sri_hash(data: bytes) -> str:
    return "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()


class IntegrityManifestStorage(CompressedManifestStaticFilesStorage):
    """Whitenoise's manifest storage plus integrity.json (see module docstring)."""

    def post_process(self, *args: Any, **kwargs: Any) -> Iterator[tuple[str, str, bool]]:
        yield from super().post_process(*args, **kwargs)
        if kwargs.get("dry_run"):
            return
        hashes = {}
        for name, hashed_name in self.hashed_files.items():
            with self.open(hashed_name) as stored:
                hashes[name] = sri_hash(stored.read())
        Path(self.location, INTEGRITY_FILE).write_text(json.dumps(hashes, indent=0, sort_keys=True))


@cache
def collected_hashes() -> dict[str, str]:
    try:
        return json.loads(Path(settings.STATIC_ROOT, INTEGRITY_FILE).read_text())
    except (OSError, ValueError):
        return {}


def integrity(path: str) -> str:
    """The integrity attribute's value for a static file, e.g. "sha384-…".
    Computed afresh under DEBUG, where a developer edits files without a restart."""
    return computed_integrity(path) if settings.DEBUG else cached_integrity(path)


@cache
def cached_integrity(path: str) -> str:
    return computed_integrity(path)


def computed_integrity(path: str) -> str:
    if isinstance(staticfiles_storage, ManifestFilesMixin):
        known = collected_hashes().get(path)
        if known is not None:
            return known
        with staticfiles_storage.open(staticfiles_storage.stored_name(path)) as stored:
            return sri_hash(stored.read())
    found = finders.find(path)
    if not found:
        raise ValueError(f"no static file {path!r}: it cannot carry an integrity hash")
    return sri_hash(Path(found).read_bytes())


@receiver(setting_changed)
def forget_hashes(*, setting: str, **kwargs: object) -> None:
    if setting in {"STATIC_ROOT", "STORAGES", "STATICFILES_DIRS"}:
        collected_hashes.cache_clear()
        cached_integrity.cache_clear()
