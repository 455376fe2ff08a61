"""The thresholds that actually decide, derived from a protocol's rules.

For every numeric name a rule compares (a question such as ``lvef_percent`` or a derived
value such as ``crcl``), the number line is cut at the rules' constants and the question's
range into pieces (points and open intervals), and each piece is tested against every
criterion comparing that name: an inclusion must be met, an exclusion must not apply.
The choice and yes/no answers the rules read are tried case by case (``sex`` in the QTc
rule, ``gilbert_syndrome`` in a bilirubin rule); a multi-select answer is tried with every
combination of the choices the rules and the rows of the tables they read name, the only
choices a rule can tell apart (those read only in the same any_of list, or as the ``in``
tests of one ``or``, count as one: ``bmi >= 30 or (bmi >= 27 and any_of(...))`` is decided
by "none" and "any"); with too many
combinations it is one of the other names below, and differing limits make it conditional;
a lookup table a rule compares with is tried row by row, and its values cut the number line
too (``7.0 <= hba1c_percent <= hba1c_upper``). The other names a rule reads take each of a
few values. A criterion sets a threshold only where the name's passing values are the
same whatever those other values are (when the name matters at all): ``alt_x_uln > 3 or
bilirubin_x_uln > 3`` limits each measure on its own. Where they differ (``shortening
fraction ≥ 28 or ejection fraction ≥ 45``) no single threshold decides, and the criterion is
listed as ``conditional``: its rule's own condition decides. A rule comparing the name only
beside a question asked exactly there (``age >= 18 and consent_willing``, asked from 18) does
not limit it. Where only a measured value of a derived name fails (``confirm_estimate``), the
estimates that are only items to confirm are said too.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from typing import Any

from ..protocol import Protocol
from ..render import format_value
from ..rules.dates import NEVER
from ..rules.expressions import (
    SCREENING_DATE,
    And,
    AnyOf,
    Compare,
    Expression,
    Member,
    Name,
    Node,
    Or,
    children,
    interpret,
    names_read,
    walk,
)

NUMERIC = ("int", "number")
EXAMPLE_DAY = date(2026, 1, 15)  # a screening date for trying date answers
MAX_COMBINATIONS = 20_000
MAX_CASES = 16  # cases of choice and yes/no answers (and table rows) tried per name
MAX_NAMED_PICKS = 8  # a multi-select naming more (2^n combinations) is never tried exactly
ALL = ""  # the case key when the passing values do not depend on a choice
NOTHING = "no value passes"


@dataclass(frozen=True)
class Piece:
    """A point (``low == high``) or the open interval between two cut points (None: unbounded)."""

    low: float | None
    high: float | None

    @property
    def is_point(self) -> bool:
        return self.low is not None and self.low == self.high


@dataclass(frozen=True)
class Scale:
    """A numeric name with its range, its unit and the constants the rules compare it with."""

    name: str
    unit: str
    integer: bool
    minimum: float | None
    maximum: float | None
    constants: tuple[float, ...]

    def pieces(self) -> list[Piece]:
        cuts = sorted(
            {c for c in self.constants if self.inside(c)}
            | {b for b in (self.minimum, self.maximum) if b is not None}
        )
        pieces: list[Piece] = []
        if self.minimum is None:
            pieces.append(Piece(None, cuts[0] if cuts else None))
        for index, cut in enumerate(cuts):
            pieces.append(Piece(cut, cut))
            following = cuts[index + 1] if index + 1 < len(cuts) else None
            if following is not None or self.maximum is None:
                pieces.append(Piece(cut, following))
        return [p for p in pieces if self.representative(p) is not None]

    def inside(self, value: float) -> bool:
        return (self.minimum is None or value >= self.minimum) and (
            self.maximum is None or value <= self.maximum
        )

    def representative(self, piece: Piece) -> float | None:
        """A value inside the piece (an integer for an int scale), or None if there is none."""
        if piece.is_point:
            return piece.low
        low, high = piece.low, piece.high
        if self.integer:
            value = (math.floor(low) + 1) if low is not None else (math.ceil(high or 0) - 1)
            return value if high is None or value < high else None
        if low is None:
            return (high or 0) - 1
        if high is None:
            return low + 1
        return (low + high) / 2


@dataclass(frozen=True)
class TableRow:
    """One row of a lookup table, tried as a case: the table's value where ``when`` holds."""

    table: str
    index: int
    when: str
    value: float


@dataclass(frozen=True)
class Threshold:
    """What decides one numeric name, over all the criteria that compare it."""

    name: str
    unit: str
    criteria: tuple[str, ...]  # criteria whose rule limits the name by a threshold
    passing: dict[str, str]  # case ("" or e.g. "sex = male") -> passing values, "≥ 60 %"
    own: dict[str, dict[str, str]]  # criterion -> case -> what that criterion alone allows
    deciding: tuple[str, ...]  # the criteria that set the passing values
    samples: tuple[float, ...] = ()  # a value from each passing piece (when no choice matters)
    conditional: tuple[str, ...] = ()  # criteria comparing the name with no single threshold
    # an estimate of a derived value that fails only criteria with confirm_estimate is an item
    # to confirm by measurement, not a failure: case -> those values ("< 50 mL/min")
    to_confirm: dict[str, str] = field(default_factory=dict)

    def text(self) -> str:
        """``lvef_percent ≥ 60 %`` or ``qtc_ms ≤ 470 ms if sex = female; ≤ 450 ms if …``;
        ``measured crcl ≥ 50 mL/min (an estimate ≥ 50 mL/min clears it; one < 50 mL/min is
        to confirm by measurement)`` where only a measured value fails."""
        passing = cases_text(self.passing)
        if not self.to_confirm:
            return f"{self.name} {passing}"
        return (
            f"measured {self.name} {passing} (an estimate {passing} clears it; "
            f"one {cases_text(self.to_confirm)} is to confirm by measurement)"
        )


def cases_text(cases: dict[str, str]) -> str:
    if set(cases) == {ALL}:
        return cases[ALL]
    return "; ".join(f"{value} if {case}" for case, value in cases.items())


def scales(protocol: Protocol) -> dict[str, Scale]:
    """Every numeric question and derived value, with the constants rules compare it to."""
    constants: dict[str, set[float]] = {}
    for expr in protocol.rules.values():
        for comparison in expr.comparisons:
            if isinstance(comparison.constant, int | float) and not isinstance(
                comparison.constant, bool
            ):
                constants.setdefault(comparison.variable, set()).add(comparison.constant)
    found: dict[str, Scale] = {}
    for q in protocol.spec.questions:
        if q.type in NUMERIC:
            found[q.variable] = Scale(
                q.variable,
                q.unit or "",
                q.type == "int",
                q.min,
                q.max,
                tuple(sorted(constants.get(q.variable, ()))),
            )
    for d in protocol.spec.derived:
        measured = protocol.questions.get(d.measured) if d.measured else None
        found[d.name] = Scale(
            d.name,
            d.unit,
            False,
            measured.min if measured else None,
            measured.max if measured else None,
            tuple(sorted(constants.get(d.name, ()))),
        )
    return found


def thresholds(protocol: Protocol) -> dict[str, Threshold]:
    """The deciding threshold of every numeric name that some rule compares."""
    found = scales(protocol)
    bounds = _table_bounds(protocol)
    for name, values in bounds.items():
        if name in found:
            scale = found[name]
            found[name] = replace(scale, constants=tuple(sorted({*scale.constants, *values})))
    return {
        name: _threshold(protocol, found, scale) for name, scale in found.items() if scale.constants
    }


def compared(protocol: Protocol, expr: Expression) -> list[str]:
    """The names a rule compares with a number or with a lookup table, in the rule's order."""
    found = [c.variable for c in expr.comparisons]
    found += [name for name, _ in _table_comparisons(protocol, expr)]
    return list(dict.fromkeys(found))


def _table_comparisons(protocol: Protocol, expr: Expression) -> Iterator[tuple[str, str]]:
    """``(name, table)`` for each comparison of a name with a lookup table in the rule."""
    for node in walk(expr.node):
        if not (
            isinstance(node, Compare)
            and isinstance(node.left, Name)
            and isinstance(node.right, Name)
        ):
            continue
        left, right = node.left.name, node.right.name
        for name, table in ((left, right), (right, left)):
            if table in protocol.tables and name not in protocol.tables:
                yield name, table


def _table_bounds(protocol: Protocol) -> dict[str, set[float]]:
    """Where tables cut a name's number line: the values of a table a rule compares the name
    with, and the limits of a table's rows on a name the rule reading the table compares."""
    bounds: dict[str, set[float]] = {}
    for expr in protocol.rules.values():
        for name, table in _table_comparisons(protocol, expr):
            bounds.setdefault(name, set()).update(value for _, value in protocol.tables[table])
        names = compared(protocol, expr)
        for table in sorted(expr.names & protocol.tables.keys()):
            for condition, _ in protocol.tables[table]:
                for c in condition.comparisons:
                    if c.variable in names and _is_number(c.constant):
                        bounds.setdefault(c.variable, set()).add(c.constant)
    return bounds


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _row_names(protocol: Protocol, table: str) -> frozenset[str]:
    return frozenset(n for condition, _ in protocol.tables[table] for n in condition.names)


def _threshold(protocol: Protocol, found: dict[str, Scale], scale: Scale) -> Threshold:
    comparing = tuple(
        cid
        for cid, expr in protocol.rules.items()
        if scale.name in compared(protocol, expr)
        and not _only_picks_questions(protocol, expr, scale)
    )
    split = sorted(
        {
            name
            for cid in comparing
            for name in protocol.rules[cid].names
            if (name in protocol.tables and scale.name not in _row_names(protocol, name))
            or (
                name in protocol.questions and protocol.questions[name].type in ("choice", "yes_no")
            )
        }
        - {scale.name}
    )
    rules = _naming(protocol, [protocol.rules[cid] for cid in comparing])
    groups = {n: _choice_groups(protocol, n, rules) for n in split if _is_multi_select(protocol, n)}
    # a multi-select naming too many choices is left to _passing, which gives up
    split = [n for n in split if len(groups.get(n, ())) <= MAX_NAMED_PICKS]
    cases = {name: _case_values(protocol, name, comparing) for name in split}
    if math.prod(len(v) for v in cases.values()) > MAX_CASES:  # too many: choices only
        cases = {
            n: v
            for n, v in cases.items()
            if n in protocol.tables or protocol.questions[n].type == "choice"
        }
    # still too many: the largest multi-selects become other names, which _passing tries with
    # every combination of their named choices, and calls conditional if the limits differ
    for name in sorted(cases, key=lambda n: -len(cases[n])):
        if math.prod(len(v) for v in cases.values()) <= MAX_CASES:
            break
        if _is_multi_select(protocol, name):
            del cases[name]
    pieces = scale.pieces()
    contexts = [
        dict(zip(cases, values, strict=True)) for values in itertools.product(*cases.values())
    ]
    # flags[criterion][context][piece]: does the criterion pass there (None: no single threshold)?
    tried = {
        cid: [_passing(protocol, found, cid, scale, pieces, ctx) for ctx in contexts]
        for cid in comparing
    }
    conditional = tuple(cid for cid in comparing if any(row is None for row in tried[cid]))
    criteria = tuple(cid for cid in comparing if cid not in conditional)
    flags: dict[str, list[list[bool]]] = {
        cid: [row for row in tried[cid] if row is not None] for cid in criteria
    }

    def together(chosen: list[str]) -> list[list[bool]]:
        return [
            [all(flags[cid][i][j] for cid in chosen) for j in range(len(pieces))]
            for i in range(len(contexts))
        ]

    def by_case(rows: list[list[bool]]) -> dict[str, str]:
        texts = {
            tuple(ctx.items()): _describe(scale, pieces, row)
            for ctx, row in zip(contexts, rows, strict=True)
        }
        if any(t != NOTHING for t in texts.values()):  # a case no value passes is not this name's
            texts = {k: t for k, t in texts.items() if t != NOTHING}
        for name in list(cases):  # leave out the answers the text does not depend on
            merged: dict[tuple[tuple[str, Any], ...], set[str]] = {}
            for key, t in texts.items():
                merged.setdefault(tuple(kv for kv in key if kv[0] != name), set()).add(t)
            if all(len(v) == 1 for v in merged.values()):
                texts = {k: v.pop() for k, v in merged.items()}
        if len(set(texts.values())) == 1:
            return {ALL: next(iter(texts.values()))}
        for name in cases:  # a multi-select's picks that allow the same values, together
            if _is_multi_select(protocol, name):
                texts = _together(texts, name)
        return {
            ", ".join(
                text
                for k, v in key
                if (text := _case_text(protocol, k, v, cases.get(k, []), groups.get(k, ())))
            ): t
            for key, t in texts.items()
        }

    combined = together(list(criteria))
    deciding = tuple(cid for cid in criteria if flags[cid] == combined)
    if not deciding:  # several criteria each set one side: those that cannot be left out
        deciding = tuple(
            cid for cid in criteria if together([c for c in criteria if c != cid]) != combined
        )
    uniform = all(row == combined[0] for row in combined)
    to_confirm: dict[str, str] = {}
    if scale.name in protocol.derived:  # an estimate fails only the criteria not confirming it
        firm = [cid for cid in criteria if protocol.criteria[cid].confirm_estimate is None]
        confirmed = [
            [estimate and not measured for estimate, measured in zip(e, m, strict=True)]
            for e, m in zip(together(firm), combined, strict=True)
        ]
        if any(any(row) for row in confirmed):
            to_confirm = by_case(confirmed)
    return Threshold(
        name=scale.name,
        unit=scale.unit,
        criteria=criteria,
        passing=by_case(combined) if criteria else {},
        own={cid: by_case(flags[cid]) for cid in criteria},
        deciding=deciding,
        samples=tuple(
            scale.representative(p)  # type: ignore[misc]
            for p, ok in zip(pieces, combined[0], strict=True)
            if ok and uniform and criteria
        ),
        conditional=conditional,
        to_confirm=to_confirm,
    )


def _only_picks_questions(protocol: Protocol, expr: Expression, scale: Scale) -> bool:
    """Whether the rule compares the name only to say which question is asked: each of its
    comparisons of the name stands, in an ``and``, beside a question asked exactly there
    (``(age >= 18 and consent_willing) or (age < 18 and guardian_consent_and_assent)``, the
    first asked from 18, the other below). Such a rule limits the answers, not the name; its
    answers taken as cases of the name would be combinations no screening has ("age 3–17 if
    consent_willing = no, guardian_consent_and_assent = yes")."""
    if any(name == scale.name for name, _ in _table_comparisons(protocol, expr)):
        return False
    bands: list[Node] = []  # the comparisons of the name found beside such a question
    for node in walk(expr.node):
        if isinstance(node, And):
            band = [p for p in node.parts if names_read(p) == {scale.name}]
            rest = [p for p in node.parts if names_read(p) != {scale.name}]
            if band and any(_asked_in_band(protocol, scale, And(tuple(band)), p) for p in rest):
                bands += [n for p in band for n in walk(p) if isinstance(n, Compare)]
    reading = [n for n in walk(expr.node) if isinstance(n, Compare) and scale.name in names_read(n)]
    return bool(reading) and all(any(n is b for b in bands) for n in reading)


def _asked_in_band(protocol: Protocol, scale: Scale, band: Node, part: Node) -> bool:
    """Whether ``part`` reads a question asked for exactly the name's values in ``band``."""
    for name in sorted(names_read(part) & protocol.when.keys()):
        condition = protocol.when[name]
        if condition.names != {scale.name}:
            continue
        cuts = {c.constant for c in condition.comparisons if _is_number(c.constant)}
        tried = replace(scale, constants=tuple(sorted({*scale.constants, *cuts})))
        values = [tried.representative(p) for p in tried.pieces()]
        if all(
            condition.evaluate({scale.name: v}) is interpret(band, {scale.name: v}) for v in values
        ):
            return True
    return False


def _case_values(protocol: Protocol, name: str, criteria: tuple[str, ...]) -> list[Any]:
    if name in protocol.tables:
        spec = protocol.table_specs[name]
        return [
            TableRow(name, index, row.when, value)
            for index, (row, (_, value)) in enumerate(
                zip(spec.rows, protocol.tables[name], strict=True)
            )
        ]
    question = protocol.questions[name]
    if question.type == "yes_no":
        return [False, True]
    if not question.multiple:
        return list(question.choices or [])
    # A multi-select is a set: no choice at all is a case of its own. Only the choices the
    # rules name can change a verdict, so every subset of them is every case there is.
    rules = _naming(protocol, [protocol.rules[cid] for cid in criteria])
    return _subsets(_named_picks(protocol, name, rules))


def _named_picks(protocol: Protocol, name: str, exprs: list[Expression]) -> tuple[str, ...]:
    """A choice for each group of choices the expressions name (see ``_choice_groups``)."""
    return tuple(group[0] for group in _choice_groups(protocol, name, exprs))


def _choice_groups(
    protocol: Protocol, name: str, exprs: list[Expression]
) -> tuple[tuple[str, ...], ...]:
    """The choices of a multi-select the expressions name, in the question's order, grouped
    where no expression can tell them apart: choices read only in the same lists of choices
    of which any one picked decides (``any_of(s, 'a', 'b')`` or ``'a' in s or 'b' in s``:
    picking a, b or both is all the same to every rule)."""
    read: dict[str, set[frozenset[Any]]] = {}
    for expr in exprs:
        for comparison in expr.comparisons:
            if comparison.variable == name:
                read.setdefault(comparison.constant, set()).add(frozenset([comparison.constant]))
        for choices in _choice_lists(expr.node, name):
            for choice in choices:
                read.setdefault(choice, set()).add(choices)
    groups: dict[frozenset[Any], list[str]] = {}
    for choice in protocol.questions[name].choices or []:
        if choice in read:
            groups.setdefault(frozenset(read[choice]), []).append(choice)
    return tuple(tuple(group) for group in groups.values())


def _choice_lists(node: Node, name: str) -> Iterator[frozenset[str]]:
    """The lists of a multi-select's choices the node reads whether any one is picked: each
    ``'a' in s`` and any_of list on its own, but the ``in`` and any_of children of one ``or``
    (the ``not in`` and none_of children of one ``and``) as one list, whose picks they read
    only together (``'a' in s or 'b' in s or x`` is ``any_of(s, 'a', 'b') or x``)."""
    if isinstance(node, Member | AnyOf):
        if node.collection == name:
            yield frozenset(node.items if isinstance(node, AnyOf) else (node.item,))
        return
    parts = children(node)
    if isinstance(node, Or | And):
        negated = isinstance(node, And)
        joined = [
            part
            for part in parts
            if isinstance(part, Member | AnyOf)
            and part.collection == name
            and part.negated == negated
        ]
        if joined:
            yield frozenset(
                choice
                for part in joined
                for choice in (part.items if isinstance(part, AnyOf) else (part.item,))
            )
            parts = tuple(part for part in parts if not any(part is j for j in joined))
    for part in parts:
        yield from _choice_lists(part, name)


def _naming(protocol: Protocol, exprs: list[Expression]) -> list[Expression]:
    """The expressions with the conditions of the rows of every table they read: a row's
    choice (``'sa' in s``) picks the table's value as a rule's own would."""
    tables = sorted({t for expr in exprs for t in expr.names & protocol.tables.keys()})
    return [*exprs, *(condition for t in tables for condition, _ in protocol.tables[t])]


def _subsets(picked: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Every subset of the picks, smallest first: ``(), ('a',), ('b',), ('a', 'b')``."""
    return list(
        itertools.chain.from_iterable(
            itertools.combinations(picked, size) for size in range(len(picked) + 1)
        )
    )


def _is_multi_select(protocol: Protocol, name: str) -> bool:
    question = protocol.questions.get(name)
    return question is not None and question.multiple


def _together(
    texts: dict[tuple[tuple[str, Any], ...], str], name: str
) -> dict[tuple[tuple[str, Any], ...], str]:
    """Merge the cases that differ only in a multi-select's picks and allow the same values:
    the multi-select's value in a key becomes the list of its picks."""
    if not any(k == name for key in texts for k, _ in key):
        return texts  # the values allowed do not depend on it
    grouped: dict[tuple[tuple[tuple[str, Any], ...], str], list[Any]] = {}
    for key, text in texts.items():
        rest = tuple((k, v) for k, v in key if k != name)
        grouped.setdefault((rest, text), []).extend(v for k, v in key if k == name)
    merged = {}
    for (rest, text), picks in grouped.items():
        merged[((name, tuple(picks)), *rest)] = text
    return merged


def _case_text(
    protocol: Protocol,
    name: str,
    value: Any,
    tried: list[Any],
    groups: tuple[tuple[str, ...], ...] = (),
) -> str:
    """``sex = male``, ``age < 65`` (a table's row), ``weight_comorbidities = none``; for a
    multi-select, what its picks (every subset of a choice from each group the rules name was
    tried) have in common, in words true whatever choices the rules do not name are picked
    too; "" when any picks will do."""
    if isinstance(value, TableRow):
        return value.when
    if not _is_multi_select(protocol, name):
        return f"{name} = {format_value(value)}"
    picks = set(value)
    if picks == set(tried):
        return ""
    named = max(tried, key=len)
    members = {group[0]: group for group in groups} or {c: (c,) for c in named}

    def flat(reps: list[str] | tuple[str, ...]) -> list[str]:
        return [c for r in reps for c in members[r]]

    def atom(rep: str) -> str:  # "a", or "(a or b)" for a group no rule tells apart
        return rep if len(members[rep]) == 1 else f"({' or '.join(members[rep])})"

    unnamed = set(protocol.questions[name].choices or []) - set(flat(named))
    some = [c for c in named if (c,) in picks]
    if some and picks == {s for s in tried if set(s) & set(some)}:
        return f"{name} includes {_or(flat(some))}"
    absent = [c for c in named if (c,) not in picks]
    if absent and picks == {s for s in tried if not set(s) & set(absent)}:
        if not unnamed and set(absent) == set(named):
            return f"{name} = none"
        if len(flat(absent)) == 1:
            return f"{name} does not include {absent[0]}"
        return f"{name} includes none of {', '.join(flat(absent))}"
    every = [c for c in named if all(c in p for p in picks)]
    if len(every) > 1 and picks == {s for s in tried if set(every) <= set(s)}:
        return f"{name} includes {_and([atom(c) for c in every])}"
    left = set(tried) - picks
    every = [c for c in named if all(c in p for p in left)]
    if len(every) > 1 and left == {s for s in tried if set(every) <= set(s)}:
        both = "both" if len(every) == 2 else "all of"
        return f"{name} does not include {both} {_and([atom(c) for c in every])}"
    if unnamed or len(flat(named)) > len(named):  # "=" would deny choices no rule tells apart
        return " or ".join(
            _exactly(name, [atom(c) for c in p], flat([c for c in named if c not in p]))
            for p in value
        )
    rest = [p for p in tried if p not in picks]  # the picks of the named choices exactly
    if len(rest) < len(picks):
        return " and ".join(f"{name} ≠ {_picks(p)}" for p in rest)
    return " or ".join(f"{name} = {_picks(p)}" for p in value)


def _exactly(name: str, picked: list[str], others: list[str]) -> str:
    """``s includes a + b and none of c, d``: these of the named choices and no other."""
    if not picked:
        return f"{name} includes none of {', '.join(others)}"
    if not others:
        return f"{name} includes {' + '.join(picked)}"
    return f"{name} includes {' + '.join(picked)} and none of {', '.join(others)}"


def _picks(picked: tuple[str, ...]) -> str:
    return " + ".join(picked) if picked else "none"


def _and(items: list[str]) -> str:
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _passing(
    protocol: Protocol,
    found: dict[str, Scale],
    criterion: str,
    scale: Scale,
    pieces: list[Piece],
    context: dict[str, Any],
) -> list[bool] | None:
    """In which pieces the criterion passes, the same for every value of the other names the
    rule reads that lets the name matter; None when that differs (no single threshold)."""
    expr = protocol.rules[criterion]
    wanted = protocol.criteria[criterion].kind == "inclusion"
    # a table whose rows read the name itself is looked up at each value of it
    looked_up = sorted(n for n in expr.names - set(context) if n in protocol.tables)
    read = expr.names.union(*(_row_names(protocol, t) for t in looked_up))
    others = sorted(read - {scale.name} - set(context) - set(looked_up))
    domains = []
    for n in others:
        tried = values_to_try(protocol, found, n, expr)
        if tried is None:
            return None  # too many to try: claim no threshold
        domains.append(tried)
    if math.prod(len(d) for d in domains) * len(pieces) > MAX_COMBINATIONS:
        return None  # too many to try: claim no threshold
    values = [scale.representative(p) for p in pieces]
    rows = [v for v in context.values() if isinstance(v, TableRow)]
    fixed = {n: v.value if isinstance(v, TableRow) else v for n, v in context.items()}
    seen: list[bool] | None = None
    for other in itertools.product(*domains):
        env = {**fixed, **dict(zip(others, other, strict=True))}
        if not all(_may_apply(protocol, r, env) for r in rows):
            continue  # the other answers pick another row of the table
        row = [
            expr.evaluate(_at(protocol, env, scale.name, v, looked_up)) is wanted for v in values
        ]
        if not any(row):
            continue  # fails whatever the name is: says nothing about it
        if seen is not None and row != seen:
            return None
        seen = row
    return seen if seen is not None else [False] * len(pieces)


def _at(
    protocol: Protocol, env: dict[str, Any], name: str, value: Any, tables: list[str]
) -> dict[str, Any]:
    """The answers with the name at a value, and the tables looked up as the engine does."""
    point = {**env, name: value}
    for table in tables:
        point[table] = None
        for condition, row_value in protocol.tables[table]:
            holds = condition.evaluate(point)
            if holds is not False:  # the first row that holds; unknown if one may
                point[table] = row_value if holds is True else None
                break
    return point


def _may_apply(protocol: Protocol, row: TableRow, env: dict[str, Any]) -> bool:
    """False when the answers tried pick another row than ``row`` (the first that holds)."""
    for index, (condition, _) in enumerate(protocol.tables[row.table]):
        holds = condition.evaluate(env)
        if index == row.index:
            return holds is not False
        if holds is True:
            return False
    return False


def values_to_try(
    protocol: Protocol, found: dict[str, Scale], name: str, expr: Expression
) -> list[Any] | None:
    """Values of a name the rule reads, a few of each kind (``_domain``); of a multi-select,
    every combination of the choices the rule names, the only ones it can tell apart (as in
    ``_case_values``); None when it names too many to try."""
    if not _is_multi_select(protocol, name):
        return list(_domain(protocol, found, name))
    picked = _named_picks(protocol, name, _naming(protocol, [expr]))
    return None if len(picked) > MAX_NAMED_PICKS else _subsets(picked)


def _domain(protocol: Protocol, found: dict[str, Scale], name: str) -> Iterator[Any]:
    """Values another name may take while one measure is tried (a few of each kind)."""
    if name in found:
        scale = found[name]
        yield from (scale.representative(p) for p in scale.pieces())
        return
    if name in protocol.tables:
        yield from sorted({value for _, value in protocol.tables[name]})
        return
    kind = protocol.kinds[name]
    if kind.base == "date":
        if name == SCREENING_DATE:
            yield EXAMPLE_DAY
            return
        yield from (EXAMPLE_DAY - timedelta(days=d) for d in (0, 30, 400, 4000))
        if kind.never:
            yield NEVER
    elif kind.base == "set":
        yield from ((), tuple(kind.choices))
    elif kind.base == "choice":
        yield from kind.choices
    elif kind.base == "yes_no":
        yield from (True, False)
    else:
        yield None


def _describe(scale: Scale, pieces: list[Piece], row: list[bool]) -> str:
    """The passing pieces as text: ``≥ 60 %``, ``14–65 years``, ``≤ 2`` (an int's ``< 3``)."""
    runs: list[tuple[Piece, Piece]] = []
    for index, (piece, ok) in enumerate(zip(pieces, row, strict=True)):
        if not ok:
            continue
        if runs and index > 0 and row[index - 1]:
            runs[-1] = (runs[-1][0], piece)
        else:
            runs.append((piece, piece))
    if not runs:
        return NOTHING
    return " or ".join(_run_text(scale, first, last) for first, last in runs)


def _run_text(scale: Scale, first: Piece, last: Piece) -> str:
    unit = f" {scale.unit}" if scale.unit else ""
    low = _bound(scale, first.low, first.is_point, +1)
    high = _bound(scale, last.high, last.is_point, -1)
    if scale.minimum is not None and first.is_point and first.low == scale.minimum:
        low = None
    if scale.maximum is not None and last.is_point and last.high == scale.maximum:
        high = None
    if low is None and high is None:
        return "any value"
    if low is None:
        return f"{high[0]} {_number(high[1])}{unit}"  # type: ignore[index]
    if high is None:
        return f"{low[0]} {_number(low[1])}{unit}"
    if low[0] == "≥" and high[0] == "≤":
        if low[1] == high[1]:
            return f"= {_number(low[1])}{unit}"
        return f"{_number(low[1])}–{_number(high[1])}{unit}"
    return f"{low[0]} {_number(low[1])} and {high[0]} {_number(high[1])}{unit}"


def _bound(
    scale: Scale, value: float | None, closed: bool, direction: int
) -> tuple[str, float] | None:
    """A lower (direction +1) or upper (-1) bound; an int's open bound becomes a closed one."""
    if value is None:
        return None
    if closed:
        return ("≥" if direction > 0 else "≤", value)
    if scale.integer and float(value).is_integer():
        return ("≥" if direction > 0 else "≤", value + direction)
    return (">" if direction > 0 else "<", value)


def _number(value: float) -> str:
    return f"{value:g}"
