"""Criterion ids as people type them: case-insensitive, a prefix names its parts."""

from __future__ import annotations


def id_matches(given: str, criterion: str) -> bool:
    """``E3`` names ``E3c`` and ``i8`` names ``I8d``; ``E1`` does not name ``E13``, nor ``E`` E3."""
    given, criterion = given.strip().lower(), criterion.lower()
    if not given or not criterion.startswith(given):
        return False
    rest = criterion[len(given) :]
    if not rest:
        return True
    has_digit = any(ch.isdigit() for ch in given)
    return has_digit and not (rest[0].isdigit() and given[-1].isdigit())
