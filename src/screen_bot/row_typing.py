"""A batch row's answers typed by one function generated per protocol, for the common row.

Most rows hold only the protocol's variables (and ``referral``, ``screened_on``), each
value already of its type: a yes/no a JSON boolean, a number in range, a choice one of
the choices. For those, one straight-line function checks every variable in turn and
returns the answers; the dates (and any other type) go through their question's
:func:`~screen_bot.answers.checker`, given as text or a list of texts. Anything else, an
unknown key or a value the fast tests do not take, gives None, and the row is typed by
the general loop (``batch.record_row``), which gives every message about a bad row. A
test holds the two to the same answers on generated rows of every shipped protocol.

What the function takes is also read alike by orjson and :mod:`json` (booleans, texts,
lists of texts, integers and floats within 64 bits, so no integer too long for orjson):
a row it takes needs no other check of its orjson reading (``batch.typed_fast``).

Its lines (:func:`typed_reads`) put each typed answer in a local; the whole-row checks of
a JSON Lines row (``rules.whole_row.record_checks``) start with them too, and then read
those locals instead of a dict of typed answers.

The source holds generated names and the variables' names through :func:`repr` (checked
against ``^[a-z][a-z0-9_]*$``); limits, choices and checkers are in its namespace.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from datetime import date
from typing import Any

from .answers import AnswerError, checker
from .protocol.schema import Question

Typer = Callable[[Mapping[str, Any], date], "dict[str, Any] | None"]
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_BIG = float(2**63)  # limits beyond: a float read by orjson could be json's long integer


def row_typer(questions: Mapping[str, Question], extra: frozenset[str]) -> Typer:
    """The function typing a record's answers to ``questions`` (None: use the general
    loop); ``extra`` are the other keys a row may hold, left out of the answers."""
    namespace: dict[str, Any] = {}
    lines, converted = typed_reads(questions, extra, namespace, lambda v: f"v_{v}")
    lines.append("typed = dict(answers)")
    lines += [f"typed.pop({key!r}, None)" for key in sorted(extra)]
    for variable in converted:  # the others are as given
        lines += [f"if v_{variable} is not None:", f"    typed[{variable!r}] = v_{variable}"]
    lines.append("return typed")
    source = "def _typed(answers, screened_on):\n" + "\n".join(f"    {line}" for line in lines)
    exec(compile(source, "<row typing>", "exec"), namespace)  # generated names only (below)
    function: Typer = namespace["_typed"]
    return function


def typed_reads(
    questions: Mapping[str, Question],
    extra: frozenset[str],
    namespace: dict[str, Any],
    local: Callable[[str], str],
) -> tuple[list[str], list[str]]:
    """Lines of a generated function of ``(answers, screened_on)``, ``answers`` a record,
    putting each answer typed in the local ``local(name)`` (None when not given), and the
    questions whose typed value is not the value given (dates, through their checker); the
    function returns None for a record with a key not of ``questions`` or ``extra``, or a
    value the fast tests do not take. Names in ``namespace`` start with ``_rt``."""
    namespace.update(_rtKEYS=extra | questions.keys(), _rtAnswerError=AnswerError)
    namespace["_rt_all_text"] = _all_text
    lines = ["if not _rtKEYS.issuperset(answers):", "    return None", "get = answers.get"]
    converted = []
    for index, (variable, question) in enumerate(questions.items()):
        if not _NAME.match(variable):
            raise ValueError(f"not a checked name: {variable!r}")
        v = local(variable)
        lines.append(f"{v} = get({variable!r})")
        test = _fast_test(question, f"_rt{index}", namespace, v)
        if test is None:
            namespace[f"_rtcheck{index}"] = checker(question)
            converted.append((variable, index))
            continue
        # (the test first: most values are given and pass it; then the None test is not run)
        lines += [f"if not ({test}) and {v} is not None:", "    return None"]
    for variable, index in converted:  # (after every fast test: a checker costs more)
        v = local(variable)
        lines += [
            f"if {v} is not None:",
            f"    if type({v}) is not str and not (type({v}) is list and _rt_all_text({v})):",
            "        return None",
            "    try:",
            f"        {v} = _rtcheck{index}({v}, screened_on)",
            "    except _rtAnswerError:",
            "        return None",
        ]
    return lines, [variable for variable, _ in converted]


def _all_text(items: list[Any]) -> bool:
    return all(type(item) is str for item in items)


def _fast_test(
    question: Question, suffix: str, namespace: dict[str, Any], v: str = "v"
) -> str | None:
    """The test of the value in ``v`` under which ``checker(question)`` returns it as it
    is, or None when its value needs the checker (a date, a list, text, an open range)."""
    kind = question.type
    if kind == "yes_no":
        return f"{v} is True or {v} is False"
    low, high = question.min, question.max
    if (
        kind in ("int", "number")
        and low is not None
        and high is not None
        and -_BIG < low <= high < _BIG
    ):
        namespace[f"_low{suffix}"], namespace[f"_high{suffix}"] = question.min, question.max
        exact = f"type({v}) is int"
        if kind == "number":
            exact = f"({exact} or type({v}) is float)"
        return f"{exact} and _low{suffix} <= {v} <= _high{suffix}"
    if kind == "choice" and not question.multiple:
        namespace[f"_choices{suffix}"] = frozenset(question.choices or ())
        return f"type({v}) is str and {v} in _choices{suffix}"
    return None
