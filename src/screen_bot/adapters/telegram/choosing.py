"""Which protocol a command's words name: ``/screen [protocol] [referral]`` and the like.

What follows the protocol (a referral code, a criterion) is one word, so of two words or
more the first always names the protocol: an id the bot does not have (a new trial's file
not added yet, a typo) is answered as the terminal answers it, "no protocol 'newtrial-01'
(protocols: …)", never taken for part of a referral. A single word names a protocol when
it is one (or ``all``), or when it looks like a protocol id (a close spelling, or the start
of one: answered with a suggestion); any other single word stays what it was (a referral).
"/screen John Smith" is still refused as a name: the referral ("Smith") is checked first.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from . import messages as say
from .callback_data import Choice, decode_choice
from .turn import Turn, answer_and_edit, answer_query

LOOKS_ALIKE = 0.75  # difflib's ratio from which a word is taken for a misspelt protocol id


def split_protocol(args: Sequence[str], choices: Sequence[str]) -> tuple[str | None, list[str]]:
    """(the protocol named or None, the remaining words)."""
    words = list(args)
    if not words:
        return None, words
    first = words[0]
    if len(words) > 1:
        return first, words[1:]
    looks_like_one = bool(difflib.get_close_matches(first, choices, n=1, cutoff=LOOKS_ALIKE))
    looks_like_one = looks_like_one or (
        len(first) >= 3 and any(c.startswith(first.lower()) for c in choices)
    )
    if first in choices or looks_like_one:
        return first, words[1:]
    return None, words


async def pick(t: Turn, choices: Sequence[str]) -> tuple[Choice, str] | None:
    """The press of a protocol button among ``choices``: (the button, the protocol id
    picked), the press not answered yet; a button from another list of protocols (they
    changed since) is refused: None."""
    query = t.update.callback_query
    if query is None:
        return None
    choice = decode_choice(query.data)
    picked = choice.picked(choices) if choice is not None else None
    if choice is None or picked is None:
        await answer_query(query, say.CHOICES_CHANGED)
        return None
    return choice, picked


async def chosen(t: Turn, choices: Sequence[str]) -> tuple[Choice, str] | None:
    """:func:`pick`, answered, and the offer shows the choice instead of its buttons."""
    found = await pick(t, choices)
    if found is not None and t.update.callback_query is not None:
        await answer_and_edit(t.update.callback_query, say.chosen(found[1]))
    return found
