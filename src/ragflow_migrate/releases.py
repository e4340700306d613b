"""The RAGFlow releases this tool knows, in order, and how to compare release strings.

A release string is RAGFlow's tag (``v0.26.4``). Comparisons follow RAGFlow's own marker rules:
surrounding space and one leading ``v``/``V`` are ignored, and a pre-release sorts before its
release (``0.27.0rc1 < 0.27.0``).

>>> parse_release(" v0.26.1 ") < parse_release("0.27.0rc1") < parse_release("v0.27.0")
True
"""

from __future__ import annotations

import re
from functools import total_ordering
from pathlib import Path

_MIGRATIONS = Path(__file__).with_name("schema") / "migrations"

#: Every release whose schema differs from the one before it, oldest first: one migration file
#: each (``schema/migrations/NNN_vX_Y_Z.py``), so adding a release is adding its file. Patch
#: releases not listed (v0.25.1 … v0.25.5, v0.26.1 … v0.26.3) share the schema of the one before.
KNOWN_RELEASES: tuple[str, ...] = tuple(
    "v" + p.stem.split("_v", 1)[1].replace("_", ".") for p in sorted(_MIGRATIONS.glob("[0-9][0-9][0-9]_v*.py")))
NEWEST_RELEASE = KNOWN_RELEASES[-1]

_RELEASE_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:[-.]?(a|b|rc|alpha|beta|dev)\.?(\d*))?$", re.IGNORECASE)
_PRE_ORDER = {"dev": 0, "a": 1, "alpha": 1, "b": 2, "beta": 2, "rc": 3}


@total_ordering
class Release:
    """A parsed release number, comparable with ``<`` and ``==``."""

    __slots__ = ("major", "minor", "patch", "pre", "text")

    def __init__(self, major: int, minor: int, patch: int, pre: tuple[int, int] | None, text: str):
        self.major, self.minor, self.patch, self.pre, self.text = major, minor, patch, pre, text

    def _key(self) -> tuple[int, int, int, int, int]:
        # A final release sorts after all of its pre-releases.
        pre = self.pre if self.pre is not None else (99, 0)
        return (self.major, self.minor, self.patch, pre[0], pre[1])

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Release) and self._key() == other._key()

    def __lt__(self, other: Release) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Release({self.text!r})"

    def __str__(self) -> str:
        return self.text


def parse_release(value: str) -> Release:
    """Parse ``v0.26.4`` (or ``0.26.4``, `` V0.27.0rc1 ``). Raises ValueError when unparsable."""
    text = value.strip()
    if text[:1] in ("v", "V"):
        text = text[1:]
    match = _RELEASE_RE.match(text)
    if not match:
        raise ValueError(f"not a release number: {value!r} (expected something like v0.27.0)")
    major, minor, patch, pre_tag, pre_num = match.groups()
    pre = (_PRE_ORDER[pre_tag.lower()], int(pre_num or 0)) if pre_tag else None
    return Release(int(major), int(minor), int(patch), pre, "v" + text)


def try_parse_release(value: object) -> Release | None:
    """Like :func:`parse_release`, but ``None`` for anything unparsable (RAGFlow's marker rule)."""
    if not isinstance(value, str):
        return None
    try:
        return parse_release(value)
    except ValueError:
        return None


def known_release(value: str) -> str:
    """Return the canonical tag of a known release, or raise ValueError naming the known ones."""
    wanted = parse_release(value)
    for tag in KNOWN_RELEASES:
        if parse_release(tag) == wanted:
            return tag
    raise ValueError(f"unknown RAGFlow release {value!r}; this tool knows {', '.join(KNOWN_RELEASES)}")


def releases_up_to(target: str) -> tuple[str, ...]:
    """Known releases from the oldest up to and including ``target``."""
    end = KNOWN_RELEASES.index(known_release(target))
    return KNOWN_RELEASES[: end + 1]
