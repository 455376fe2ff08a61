"""Unit spellings compared as people write them (placeholder until the leaves branch lands)."""

from __future__ import annotations


def unit_key(unit: str) -> str:
    return (
        unit.lower()
        .replace(" ", "")
        .replace("²", "2")
        .replace("μ", "u")
        .replace("µ", "u")
        .replace("micro", "u")
        .replace("×", "x")
    )


def same_unit(a: str | None, b: str | None) -> bool:
    return unit_key(a or "") == unit_key(b or "")
