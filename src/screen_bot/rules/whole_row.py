"""A whole row of typed answers checked by one function generated per protocol (the batch).

The general path makes a context (a dict), every rule's status on it, then what the verdict
shows beside the statuses: the estimates some status rests on (each reader's rule run again
without the estimate), the unusual answers, and the outcome of each criterion not met (the
values its rule read, what to ask). The function generated here does all of that in local
variables, as :mod:`.stored` does for a dialog's last answer (it shares that module's
code), from answers already typed (a batch row's, as :func:`~.evaluation.context` takes
them). A context is made, from the same locals, only to find when a failed time window
will be met (``windows.waiting``).

Protocols :mod:`.stored` does not compile keep the general path (None here), and so does a
row where a failure may rest only on an estimate (the ``confirm`` fix), or a protocol where
a criterion open to that fix reads two estimated values (its status without one of them
would need the fix). ``verdict.row_fields`` puts the parts together; tests compare it with
``verdict.fields_of`` on generated answers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from ..row_typing import typed_reads
from .demand import Demand, whole
from .evaluation import Context, Outcome, Status, Used, _plan, clocks_read
from .expressions import SCREENING_DATE
from .stored import _simple, _tuple, function_of, reading, rule_statuses
from .windows import Waiting, first_day, open_then, waiting

if TYPE_CHECKING:
    from ..protocol.model import Protocol

# every criterion's status; the estimates some status rests on (names, sorted); each answer
# outside its plausibility limits (question, value); and what makes the context: the values
# of Row.names, the asked flags of Row.conditional, each estimate made (its value,
# calculator and inputs) by derived name; and the outcome of each criterion not met
Parts = tuple[
    tuple[Status, ...],
    list[str],
    list[tuple[Any, Any]],
    tuple[Any, ...],
    tuple[bool, ...],
    dict[str, tuple[float, str, dict[str, Any]]],
    list[Outcome],
]


@dataclass(frozen=True)
class Row:
    """A protocol's whole-row checks, compiled: see :func:`row_checks`."""

    run: Callable[[Mapping[str, Any], date], Parts | None]  # None: a record not taken
    criteria: tuple[str, ...]  # in the order of the statuses
    confirming: tuple[int, ...]  # positions of the criteria a failure may rest on an estimate
    names: tuple[str, ...]  # the context's names, in the order of its values
    always: frozenset[str]
    conditional: tuple[str, ...]
    _applicable: dict[tuple[bool, ...], frozenset[str]] = field(default_factory=dict)
    # (first day, whether it is the whole answer: no day, or met on it) by what decides it
    _waits: dict[Any, tuple[Waiting | None, bool]] = field(default_factory=dict)

    def __call__(self, answers: Mapping[str, Any], screened_on: date) -> Parts | None:
        """The row's parts, or None when the general path must decide (the ``confirm`` fix,
        or for :func:`record_checks`, a record its typing does not take)."""
        found = self.run(answers, screened_on)
        if found is None:
            return None
        statuses = found[0]
        for i in self.confirming:  # (a loop: one or two criteria, on every batch row)
            if statuses[i] == "failed":
                return None
        return found

    def context(self, parts: Parts) -> Context:
        """:func:`~.evaluation.context` of the answers ``parts`` came from; a name not asked
        or not answered holds None, which everything reading a context reads as absent."""
        values, asked, made = parts[3], parts[4], parts[5]
        applicable = self._applicable.get(asked)
        if applicable is None:
            applicable = self.always.union(
                q for q, a in zip(self.conditional, asked, strict=True) if a
            )
            if len(self._applicable) < 4096:  # at most 2 ** the conditional questions
                self._applicable[asked] = applicable
        estimated = {name: Used(calculator, shown) for name, (_, calculator, shown) in made.items()}
        return Context(dict(zip(self.names, values, strict=True)), applicable, estimated)

    def waiting(
        self, protocol: Protocol, failed: Outcome, parts: Parts, screened_on: date
    ) -> Waiting | None:
        """:func:`~.windows.waiting` for a failed criterion of the row ``parts`` came from;
        its first day is remembered by what decides it: the values its rule read (known ones
        in ``failed``), its estimated names and the screening date, which a batch's rows
        often share. So is whether the criterion is met on that day (its rule reads nothing
        else): then that is the answer. Else what keeps it open then is found for each row
        (which questions behind its unknown values were asked is not in the key)."""
        if not clocks_read(protocol, failed.criterion):
            return None  # no time window
        key = (failed.criterion, screened_on, tuple(failed.values.items()), failed.estimated)
        try:
            cached = self._waits.get(key)
        except TypeError:  # a value that cannot be a key
            return waiting(protocol, failed.criterion, self.context(parts))
        if cached is None:
            ctx = self.context(parts)
            found = first_day(protocol, failed.criterion, ctx)
            then = open_then(protocol, failed.criterion, ctx, found)
            if len(self._waits) < 4096:  # a few distinct dates per criterion, usually
                self._waits[key] = (found, then is found)
            return then
        found, whole = cached
        if whole:  # no day, or met on it
            return found
        return open_then(protocol, failed.criterion, self.context(parts), found)


def row_checks(protocol: Protocol) -> Row | None:
    """The protocol's whole-row checks; None when not compiled. Made once and kept on the
    protocol, as its rules' plan is."""
    if "_row_checks" not in protocol.__dict__:
        protocol.__dict__["_row_checks"] = _row(protocol) if _compiled(protocol) else None
    found: Row | None = protocol.__dict__["_row_checks"]
    return found


def record_checks(protocol: Protocol, extra: frozenset[str]) -> Row | None:
    """:func:`row_checks` on a batch record as read (a JSON Lines line's object, the keys
    ``extra`` beside the answers), its answers typed on the way into the locals as
    :func:`~..row_typing.row_typer` types them: no dict of typed answers is made and read
    back. Its call gives None also for a record that typing does not take. None when not
    compiled, or when a question bears the name of one of ``extra``. Made once and kept."""
    if "_record_checks" not in protocol.__dict__:
        clash = extra & protocol.questions.keys()
        made = _row(protocol, extra) if _compiled(protocol) and not clash else None
        protocol.__dict__["_record_checks"] = made
    found: Row | None = protocol.__dict__["_record_checks"]
    return found


def _compiled(protocol: Protocol) -> bool:
    if not _simple(protocol):
        return False
    plan = _plan(protocol)
    estimable = {name for name, found in plan.estimates.items() if found}
    return all(len(estimable & set(r.names)) < 2 for r in plan.rules.values() if r.confirm)


def _row(protocol: Protocol, extra: frozenset[str] | None = None) -> Row:
    """The whole-row checks on typed answers; given ``extra``, on a record (see
    :func:`record_checks`)."""
    plan = _plan(protocol)
    need = whole(protocol)
    criteria = tuple(plan.rules)
    namespace, lines, names = reading(protocol, need, stored=False, read=extra is None)
    if extra is not None:
        lines[:0] = typed_reads(protocol.questions, extra, namespace, lambda v: f"r_{v}")[0]
    position = {cid: i for i, cid in enumerate(criteria)}
    for i, status in enumerate(rule_statuses(protocol, namespace, names, criteria, lines)):
        lines.append(f"s{i} = {status}")
    lines.append(f"statuses = {_tuple(f's{i}' for i in range(len(criteria)))}")
    lines.append("estimated = {}")
    made = [d for d in need.derived if plan.estimates[d.name]]
    for d in made:  # each estimate made, with its inputs as ``derive`` shows them
        estimate = plan.estimates[d.name][0]
        shown = ", ".join(f"{n!r}: {names.get(n, 'None')}" for _, n in estimate.inputs)
        measured = f" and {names.get(d.measured, 'None')} is None" if d.measured else ""
        lines.append(f"if d_{d.name} is not None{measured}:")
        calculator = estimate.calculator
        lines.append(f"    estimated[{d.name!r}] = (d_{d.name}, {calculator!r}, {{{shown}}})")
    lines.append("used = []")
    for index, d in enumerate(sorted(made, key=lambda d: d.name)):
        # used when some reader's status changes without it (``estimates_used``)
        readers = plan.readers[d.name]
        without = rule_statuses(
            protocol, namespace, {**names, d.name: "None"}, readers, lines, f"w{index}_"
        )
        changed = " or ".join(
            f"{w} != s{position[c]}" for w, c in zip(without, readers, strict=True)
        )
        lines.append(f"if {d.name!r} in estimated and ({changed or 'False'}):")
        lines.append(f"    used.append({d.name!r})")
    _details(protocol, need, namespace, names, criteria, lines)
    lines.append("warnings = []")  # (question, value) of each answer outside its limits
    for index, question in enumerate(protocol.limited_questions):
        value = names.get(question.variable, "None")
        inside = []
        if question.confirm_below is not None:
            namespace[f"_low{index}"] = question.confirm_below
            inside.append(f"{value} >= _low{index}")
        if question.confirm_above is not None:
            namespace[f"_high{index}"] = question.confirm_above
            inside.append(f"{value} <= _high{index}")
        namespace[f"_question{index}"] = question
        lines.append(
            f"if {value} is not None and type({value}) is not bool"
            f" and not ({' and '.join(inside) or 'True'}):"
        )
        lines.append(f"    warnings.append((_question{index}, {value}))")
    asked = _tuple(f"asked_{c.variable}" for c in need.conditions)
    values = _tuple(names.values())
    lines.append(f"return statuses, used, warnings, {values}, {asked}, estimated, details")
    return Row(
        function_of(namespace, lines, f"<whole-row checks of {protocol.id}>"),
        criteria,
        tuple(i for i, cid in enumerate(criteria) if plan.rules[cid].confirm),
        tuple(names),
        plan.always,
        tuple(c.variable for c in need.conditions),
    )


def _details(
    protocol: Protocol,
    need: Demand,
    namespace: dict[str, Any],
    names: dict[str, str],
    criteria: tuple[str, ...],
    lines: list[str],
) -> None:
    """The outcome of each criterion not met, as :func:`~.evaluation.outcome` makes it, in
    ``details``: the known values its rule read, its estimated names, and for an unknown
    one the questions to ask (see :func:`open_variables`)."""
    plan = _plan(protocol)
    namespace.update(_Outcome=Outcome, _open=open_variables, _MET=("met",) * len(criteria))
    lines.append("details = []")
    if criteria:
        lines.append("if statuses != _MET:")
    estimable = {name for name, found in plan.estimates.items() if found}
    for i, cid in enumerate(criteria):
        rule = plan.rules[cid]
        read = [(n, names.get(n, "None")) for n in rule.names]
        known = ", ".join(f"({n!r}, {local})" for n, local in read if n != SCREENING_DATE)
        values = f"{{k: v for k, v in ({known},) if v is not None}}" if known else "{}"
        made = [n for n in rule.names if n in estimable]
        estimated = f"tuple(n for n in {tuple(made)!r} if n in estimated)" if made else "()"
        inputs = [
            f"({n!r}, {local}, ({''.join(_input(need, names, v) for v in rule.inputs[n])}),"
            f" {_measured(protocol, need, names, n) if rule.confirm else '()'})"
            for n, local in read
        ]
        lines.append(f"    if s{i} != 'met':")
        lines.append(
            f"        details.append(_Outcome({cid!r}, s{i}, {values}, {estimated},"
            f" _open(({', '.join(inputs)},)) if s{i} == 'unknown' else ()))"
        )


def _measured(protocol: Protocol, need: Demand, names: dict[str, str], name: str) -> str:
    """The measured question behind ``name`` when it was estimated, for :func:`open_variables`
    (a rule wanting the measurement, ``confirm_estimate``, reads it in place of the estimate)."""
    derived = protocol.derived.get(name)
    if derived is None or not derived.measured:
        return "()"
    return f"(({_input(need, names, derived.measured)}) if {name!r} in estimated else ())"


def _input(need: Demand, names: dict[str, str], question: str) -> str:
    """(question, whether it is asked, its value), for :func:`open_variables`."""
    if question in need.always:
        asked = "True"
    elif question in {c.variable for c in need.conditions}:
        asked = f"asked_{question}"
    else:
        asked = "False"
    return f"({question!r}, {asked}, {names.get(question, 'None')}), "


Behind = tuple[tuple[str, bool, Any], ...]  # questions as (question, asked, value)


def open_variables(read: tuple[tuple[str, Any, Behind, Behind], ...]) -> tuple[str, ...]:
    """What to ask or measure to decide an unknown criterion, as ``_outcome`` finds it,
    from (name, value, its inputs, its measured question when it was estimated and the rule
    wants the measurement) of each name its rule reads: the questions asked but not answered
    behind an unknown name or an estimate; else the unknown names."""
    found: list[str] = []
    for _, value, inputs, measured in read:
        behind = inputs if value is None else measured
        found += [v for v, asked, x in behind if asked and x is None and v not in found]
    return tuple(found) or tuple(name for name, value, *_ in read if value is None)
