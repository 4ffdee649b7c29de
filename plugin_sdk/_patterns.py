"""Message-type patterns: exact names (``container.create``) and globs (``container.*``).

Matching is :func:`fnmatch.fnmatchcase`: case-sensitive, and ``*`` also matches
dots, so ``container.*`` matches ``container.exec.start`` and ``*`` matches every
type. A pattern is a glob when it holds one of ``*``, ``?`` or ``[``.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Final

__all__ = ["is_glob", "pattern_problem", "type_matches"]

_GLOB_CHARS: Final = frozenset("*?[")


def is_glob(pattern: str) -> bool:
    """Whether ``pattern`` is a glob rather than one exact message type."""
    return not _GLOB_CHARS.isdisjoint(pattern)


def type_matches(pattern: str, message_type: str) -> bool:
    """Whether ``message_type`` is matched by ``pattern`` (exact name or glob)."""
    if not is_glob(pattern):
        return pattern == message_type
    return fnmatchcase(message_type, pattern)


def pattern_problem(pattern: object) -> str | None:
    """What is wrong with ``pattern`` as a message-type pattern, or None if it is fine."""
    if not isinstance(pattern, str):
        return f"a pattern must be a string, got {type(pattern).__name__} {pattern!r}"
    if not pattern:
        return "a pattern must not be empty"
    if any(c.isspace() for c in pattern):
        return f"pattern {pattern!r} contains whitespace"
    return None
