"""Compare units the way people write them: "mL/min/1.73 m²" is "ml/min/1.73m2"."""

from __future__ import annotations

import re
import unicodedata

# After NFKC (which already turns ² into 2 and the micro sign µ into Greek μ):
_SPELLINGS = (("micro", "u"), ("μ", "u"), ("×", "x"), ("^", ""))
_SPACE = re.compile(r"\s+")


def unit_key(unit: str) -> str:
    """A canonical key: case and spaces ignored, ``²``→``2``, ``µ``/``μ``/``micro``→``u``,
    ``×``→``x``, ``^`` dropped (``m^2`` is ``m²``).

    Two spellings of one unit get the same key; the key is for comparing, not for showing.
    """
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", unit).casefold())
    key = _SPACE.sub("", folded)
    for written, canonical in _SPELLINGS:
        key = key.replace(written, canonical)
    # Once more: a mark left after "u" or a removed space composes ("u" + "¯" is "ū"), so a
    # key is its own key.
    return unicodedata.normalize("NFKC", key)


# Other ways people write a unit (keys as unit_key makes them), e.g. "40y", "420 msec".
_ALIASES = {
    "years": ("y", "yr", "yrs", "year", "yo", "yearsold"),
    "ms": ("msec", "msecs", "millisecond", "milliseconds"),
    "%": ("percent", "pct"),
    "kg": ("kilo", "kilos", "kilogram", "kilograms"),
    "cm": ("centimetre", "centimetres", "centimeter", "centimeters"),
    "months": ("month", "mo", "mos"),
    "weeks": ("week", "wk", "wks"),
    "days": ("day", "d"),
}
_ALIAS_KEYS = {
    unit_key(alias): unit_key(unit) for unit, aliases in _ALIASES.items() for alias in aliases
}


def spoken_unit_key(unit: str) -> str:
    """The key of a unit as typed, with common spellings (``y``, ``msec``) mapped to theirs."""
    key = unit_key(unit)
    return _ALIAS_KEYS.get(key, key)


def same_unit(a: str | None, b: str | None) -> bool:
    """Whether ``a`` and ``b`` name the same unit; no unit (None or blank) equals only no unit."""
    return (unit_key(a) if a else "") == (unit_key(b) if b else "")
