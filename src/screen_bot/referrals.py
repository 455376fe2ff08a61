"""The one check of a referral label: a short code, never a name."""

from __future__ import annotations

import re

from .errors import BadReferral
from .session import REFERRAL_PATTERN
from .words import REFERRAL_REFUSED

_REFERRAL = re.compile(REFERRAL_PATTERN)


def check_referral(text: str) -> str:
    """The referral as given, or :class:`BadReferral` with the one wording for it."""
    if not _REFERRAL.fullmatch(text):  # ($ would let a final newline in)
        raise BadReferral(REFERRAL_REFUSED)
    return text
