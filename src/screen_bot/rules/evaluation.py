"""Three-valued evaluation of a protocol's criteria on a set of answers.

Statuses: ``met``, ``failed``, ``unknown`` (an answer is missing or is the investigator's
call) and ``confirm`` (it fails only on an estimate the protocol wants measured).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from .calculators import CALCULATORS
from .compiled import compile_statuses
from .expressions import SCREENING_DATE, Known, Node, interpret, names_read, walk

if TYPE_CHECKING:
    from ..protocol.model import Estimate, Protocol
    from ..protocol.schema import Derived

Status = Literal["met", "failed", "unknown", "confirm"]
OPEN: frozenset[str] = frozenset({"unknown", "confirm"})


@dataclass  # not frozen: a batch makes one for each criterion not met of each row, and a
class Outcome:  # frozen dataclass takes three times as long to make (nothing changes one)
    criterion: str
    status: Status
    values: dict[str, Any] = field(default_factory=dict)  # known values the rule read
    estimated: tuple[str, ...] = ()  # derived values that were calculated, not measured
    open_variables: tuple[str, ...] = ()  # what to ask or measure to decide it


@dataclass(frozen=True)
class Used:
    """How an estimated value was obtained."""

    calculator: str
    inputs: dict[str, Any]  # question -> value


@dataclass(frozen=True)
class Context:
    """Answers as the rules see them: unasked questions dropped, derived values added."""

    env: dict[str, Any]
    applicable: frozenset[str]
    estimated: dict[str, Used]  # derived name -> the calculator and inputs it came from


@dataclass(frozen=True)
class _Rule:
    """A criterion's rule with what evaluating it needs, looked up once per protocol."""

    evaluate: Any
    exclusion: bool
    names: tuple[str, ...]  # sorted
    inputs: dict[str, list[str]]  # name -> the questions it stands for
    confirm: bool  # a failure resting only on an estimate is an open item
    # the questions whose being answered at all, not only their value, the rule reads
    # (see _reads_known): a failure may not last while one of them may still be asked
    reads_known: frozenset[str]


@dataclass(frozen=True)
class _Condition:
    """A question's condition with what evaluating it needs, looked up once."""

    variable: str
    evaluate: Any
    names: tuple[str, ...]  # questions it reads
    # (table, rows, the questions they read, None when the rows read only questions)
    tables: tuple[tuple[str, Any, tuple[str, ...] | None], ...]
    inputs: tuple[str, ...]  # every question it reads, through tables too

    @classmethod
    def of(cls, protocol: Protocol, variable: str) -> _Condition:
        expr = protocol.when[variable]
        names = tuple(sorted(n for n in expr.names if n in protocol.questions))
        tables = []
        for n in sorted(expr.names):
            if n in protocol.tables:
                rows = protocol.tables[n]
                read = tuple(protocol.inputs_of(n))
                plain = all(c.names <= protocol.questions.keys() for c, _ in rows)
                tables.append((n, rows, None if plain else read))
        inputs = tuple(
            dict.fromkeys([*names, *(q for n, *_ in tables for q in protocol.inputs_of(n))])
        )
        return cls(variable, expr.evaluate, names, tuple(tables), inputs)


@dataclass(frozen=True)
class _Estimate:
    """One way to estimate a derived value, looked up once."""

    when: Any  # its condition's evaluator; None: always applicable
    calculator: str
    function: Callable[..., float]
    inputs: tuple[tuple[str, str], ...]  # (the calculator's parameter, the name it reads)
    condition: Node | None  # its condition's tree (for interpret); None: always applicable

    @classmethod
    def of(cls, estimate: Estimate) -> _Estimate:
        when = None if estimate.when is None else estimate.when.evaluate
        use = estimate.use
        function = CALCULATORS[use.calculator].function
        node = None if estimate.when is None else estimate.when.node
        return cls(when, use.calculator, function, tuple(use.inputs.items()), node)


@dataclass(frozen=True)
class _Plan:
    """Per-protocol constants of evaluation (the protocol is read-only)."""

    always: frozenset[str]
    conditional: tuple[_Condition, ...]  # in dialog order
    rules: dict[str, _Rule]
    readers: dict[str, tuple[str, ...]]  # derived name -> the criteria whose rule reads it
    together: Any  # env -> every rule's status, in criteria order (one compiled function)
    # (position, rule) of the criteria whose failure may rest only on an estimate
    confirming: tuple[tuple[int, _Rule], ...]
    positions: dict[str, int]  # criterion -> its position in the dialog file
    estimates: dict[str, tuple[_Estimate, ...]]  # derived name -> its estimates, in order
    clocks: dict[str, tuple[str, ...]]  # criterion -> the clocks its rule reads (dates)
    # question -> the criteria not reading it whose lasting failure its answer may decide
    # (it decides whether a question of their reads_known may still be asked)
    settles: dict[str, tuple[str, ...]]

    @classmethod
    def of(cls, protocol: Protocol) -> _Plan:
        conditional = tuple(
            _Condition.of(protocol, v) for v in protocol.order if v in protocol.when
        )
        rules = {
            cid: _Rule(
                expr.evaluate,
                protocol.criteria[cid].kind == "exclusion",
                tuple(sorted(expr.names)),
                {name: protocol.inputs_of(name) for name in expr.names},
                protocol.criteria[cid].confirm_estimate is not None,
                frozenset(_reads_known(protocol, expr.node, set())),
            )
            for cid, expr in protocol.rules.items()
        }
        readers = {
            name: tuple(cid for cid, rule in rules.items() if name in rule.names)
            for name in protocol.derived
        }
        together = compile_statuses(
            [(protocol.rules[cid].node, rule.exclusion) for cid, rule in rules.items()],
            f"all rules of {protocol.id}",
        )
        always = frozenset(protocol.order) - protocol.when.keys()
        confirming = tuple((i, rule) for i, rule in enumerate(rules.values()) if rule.confirm)
        positions = {cid: i for i, cid in enumerate(rules)}
        estimates = {
            name: tuple(_Estimate.of(e) for e in found)
            for name, found in protocol.estimates.items()
        }
        # Anchors first: a planned date may not lie before the screening date, so a rule
        # that reads both (ctl019's C-I1b: P or D at least 6 months after the transplant)
        # is passed by moving the planned date, the day the patient can be infused; a
        # screening on that day would need the planned date moved too.
        clocks = {
            cid: tuple(c for c in (*protocol.spec.anchors, SCREENING_DATE) if c in rule.names)
            for cid, rule in rules.items()
        }
        settles = _settles(conditional, rules)
        return cls(
            always,
            conditional,
            rules,
            readers,
            together,
            confirming,
            positions,
            estimates,
            clocks,
            settles,
        )


def _reads_known(protocol: Protocol, node: Node, seen: set[str]) -> set[str]:
    """The questions whose being answered at all, not only their value, an expression reads:
    those of ``known()`` and ``unknown()`` (of a derived value or table: the questions it
    reads), and a derived value's measured question (used when known), through the derived
    values and tables it reads (``seen``: those read already)."""
    found: set[str] = set()
    for n in walk(node):
        if isinstance(n, Known):
            found.update([n.name] if n.name in protocol.questions else protocol.inputs_of(n.name))
    for name in sorted(names_read(node) - seen):
        seen.add(name)
        if name in protocol.derived:
            measured = protocol.derived[name].measured
            found.update([measured] if measured else [])
            for estimate in protocol.estimates.get(name, ()):
                if estimate.when is not None:
                    found |= _reads_known(protocol, estimate.when.node, seen)
        elif name in protocol.tables:
            for condition, _ in protocol.tables[name]:
                found |= _reads_known(protocol, condition.node, seen)
    return found


def _settles(
    conditional: tuple[_Condition, ...], rules: dict[str, _Rule]
) -> dict[str, tuple[str, ...]]:
    """:attr:`_Plan.settles`: for each criterion whose rule reads whether a question is
    answered, the questions whose answers decide whether such a question may still be asked
    (the questions its condition reads, and theirs, on back), less those the rule reads."""
    reads = {c.variable: c.inputs for c in conditional}
    found: dict[str, list[str]] = {}
    for cid, rule in rules.items():
        deciding: set[str] = set()
        stack = list(rule.reads_known)
        while stack:
            for n in reads.get(stack.pop(), ()):
                if n not in deciding:
                    deciding.add(n)
                    stack.append(n)
        reading = {q for questions in rule.inputs.values() for q in questions}
        for question in sorted((deciding | rule.reads_known) - reading):
            found.setdefault(question, []).append(cid)
    return {q: tuple(cids) for q, cids in found.items()}


def _plan(protocol: Protocol) -> _Plan:
    """The protocol's plan, made once and kept on it the way its cached properties are."""
    plan = protocol.__dict__.get("_rules_plan")
    if plan is None:
        plan = protocol.__dict__["_rules_plan"] = _Plan.of(protocol)
    return plan


def applicable_questions(
    protocol: Protocol, answers: Mapping[str, Any], screened_on: date | None = None
) -> frozenset[str]:
    """Questions whose condition does not rule them out, given the answers.

    A question is asked when its condition is true, or unknown because an answer it reads
    is unknown. A question that was not asked counts as unknown inside a condition; a
    condition left undecided only by questions that were not asked means "not asked"
    (``contraception_agreed`` is not asked of a man), while one a known part decides is
    followed (``sex == 'male' or childbearing_potential`` asks every man).
    """
    plan = _plan(protocol)
    return asked(plan.always, plan.conditional, answers, screened_on)[0]


def asked(
    always: frozenset[str],
    conditional: tuple[_Condition, ...],
    answers: Mapping[str, Any],
    screened_on: date | None,
) -> tuple[frozenset[str], dict[str, Any]]:
    """The questions asked: ``always`` and those of the ``conditional`` ones (in dialog
    order) whose condition asks them (see :func:`applicable_questions`); and the env of the
    questions asked, their answers (a missing one reads as unknown) and the screening date.

    A subset holding every conditional question its conditions read decides its questions
    as the whole list does: each in the same order, from the same answers.

    Every condition is evaluated on that one env, grown as questions turn out asked: a
    question not (yet) asked is absent from it, so it reads as unknown, as in a condition's
    own env of the asked questions it reads. A table whose rows read only questions is
    looked up on it too; one whose rows read more (a derived value, the screening date)
    on its questions alone, where the rest reads as unknown.
    """
    env: dict[str, Any] = {v: x for v, x in answers.items() if v in always}
    return grown(always, conditional, env, answers, screened_on)


def grown(
    always: frozenset[str],
    conditional: tuple[_Condition, ...],
    env: dict[str, Any],
    answers: Mapping[str, Any],
    screened_on: date | None,
) -> tuple[frozenset[str], dict[str, Any]]:
    """:func:`asked` from ``env``, the answers of the questions of ``always`` already; ``answers``
    is read only for the conditional questions asked (``in``, then ``[]``)."""
    added: set[str] = set()
    env[SCREENING_DATE] = screened_on
    get = env.get
    for condition in conditional:
        if condition.tables:
            for table, rows, read in condition.tables:  # rows read only earlier questions
                sees = env if read is None else {n: env[n] for n in read if n in env}
                env[table] = _look_up(rows, sees)
            value = condition.evaluate(env)
            for table, *_ in condition.tables:
                del env[table]
        else:
            value = condition.evaluate(env)
        if value is True or (
            value is None
            and any((n in always or n in added) and get(n) is None for n in condition.inputs)
        ):
            variable = condition.variable
            added.add(variable)
            if variable in answers:
                env[variable] = answers[variable]
    return (always.union(added) if added else always), env


def may_be_asked(
    protocol: Protocol,
    answers: Mapping[str, Any],
    to_come: Collection[str],
    screened_on: date | None = None,
) -> frozenset[str]:
    """The questions :func:`applicable_questions` gives on ``answers``, and besides those
    that may yet be asked once the answers still ``to_come`` (from the dialog's current step
    on) are given: an upper bound that only falls as answers come (the progress total).

    A question to come that may be asked reads as unknown in ``known()`` and ``unknown()``,
    as it does in a comparison; :func:`applicable_questions` reads it as not answered, so
    ``when: known(x)`` left a question after ``x`` out until ``x`` was answered. Kleene's
    logic decides only more as answers come: a question left out here stays out.
    """
    plan = _plan(protocol)
    env: dict[str, Any] = {v: x for v, x in answers.items() if v in plan.always}
    env[SCREENING_DATE] = screened_on
    to_come = set(to_come) - answers.keys()
    pending = {v for v in to_come if v in plan.always}  # to come, and may be asked
    added: set[str] = set()
    for condition in plan.conditional:
        scope = dict(env)
        for table, rows, read in condition.tables:
            sees = env if read is None else {n: env[n] for n in read if n in env}
            scope[table] = _look_up(rows, sees, pending)
        value = interpret(protocol.when[condition.variable].node, scope, pending)
        if value is True or (
            value is None
            and any(
                (n in plan.always or n in added) and env.get(n) is None for n in condition.inputs
            )
        ):
            variable = condition.variable
            added.add(variable)
            if variable in answers:
                env[variable] = answers[variable]
            elif variable in to_come:
                pending.add(variable)
    return plan.always | added


def lasting_failures(
    protocol: Protocol,
    made: Callable[[], Context],
    answers: Mapping[str, Any],
    to_come: Iterable[str],
    failing: Iterable[str],
) -> list[str]:
    """Those of the criteria ``failing`` on the typed ``answers`` so far that fail whatever
    the answers still ``to_come`` (the questions from the dialog's current step on) will be:
    the dialog's early exit, a protocol's leaving the running in a set. ``made`` gives the
    answers' context (called only when a failure is in doubt).

    Kleene's logic decides only more as answers come: a failure lasts, unless the rule
    reads whether a question is answered at all (``known()``, ``unknown()``, a derived
    value's measured question: :func:`_reads_known`) and such a question may still be asked
    (:func:`may_be_asked`). Then the rule is read again with each question to come that may
    be asked not known yet: unknown in ``known()`` and ``unknown()`` too, as it is in a
    comparison, and so is a derived value whose measured question is to come, or a derived
    value or table left unknown by such a question. With nothing to come, every failure
    lasts: the verdict of every rule on the same answers.
    """
    if not may_not_last(protocol, failing):
        return list(failing)
    plan = _plan(protocol)
    rest = set(to_come).difference(answers)
    lasting = [cid for cid in failing if plan.rules[cid].reads_known.isdisjoint(rest)]
    doubtful = [cid for cid in failing if cid not in lasting]
    if not doubtful:
        return lasting
    ctx = made()
    pending = set(may_be_asked(protocol, answers, rest, ctx.env.get(SCREENING_DATE)) & rest)
    env = dict(ctx.env)
    derive(protocol, env, protocol.spec.derived, protocol.tables, pending)
    for cid in doubtful:
        rule, node = plan.rules[cid], protocol.rules[cid].node
        status = _polarity(rule, interpret(node, env, pending))
        if status == "failed" and rule.confirm and ctx.estimated:  # as _status does
            estimates = [n for n in rule.names if n in ctx.estimated]
            without = {**env, **dict.fromkeys(estimates)}
            if estimates and _polarity(rule, interpret(node, without, pending)) != "failed":
                status = "confirm"
        if status == "failed":
            lasting.append(cid)
    return [cid for cid in failing if cid in lasting]  # in the order given


def may_not_last(protocol: Protocol, failing: Iterable[str]) -> bool:
    """Whether a failure of one of the criteria ``failing`` may not last
    (:func:`lasting_failures`): only one whose rule reads whether a question is answered may
    be undone by the answers still to come; when none does, each lasts, whatever they are."""
    rules = _plan(protocol).rules
    return any(rules[cid].reads_known for cid in failing)


def settled_by(protocol: Protocol, question: str) -> tuple[str, ...]:
    """The criteria not reading ``question`` whose lasting failure its answer may decide
    (:func:`lasting_failures`): it decides whether a question whose being answered their rule
    reads may still be asked."""
    return _plan(protocol).settles.get(question, ())


def context(
    protocol: Protocol, answers: Mapping[str, Any], screened_on: date | None = None
) -> Context:
    plan = _plan(protocol)
    # the answers given to questions asked (a missing name reads as unknown)
    applicable, env = asked(plan.always, plan.conditional, answers, screened_on)
    estimated = derive(protocol, env, protocol.spec.derived, protocol.tables)
    return Context(env, applicable, estimated)


def derive(
    protocol: Protocol,
    env: dict[str, Any],
    derived: Iterable[Derived],
    tables: Iterable[str],
    to_come: set[str] | None = None,
) -> dict[str, Used]:
    """Add the ``derived`` values (in the file's order), then the ``tables`` (in the
    protocol's order), to ``env``; return how the estimated ones were obtained.

    ``to_come`` (see :func:`lasting_failures`): the questions still to come that may be
    asked, read as :func:`~.expressions.interpret` reads them; a value they may still
    change is unknown and is added to it: a derived value whose measured question is to
    come, a derived value or table left unknown by one of them.
    """
    estimated: dict[str, Used] = {}
    estimates = _plan(protocol).estimates
    get = env.get
    for d in derived:
        measured = get(d.measured) if d.measured else None
        if measured is not None:
            env[d.name] = measured
            continue
        env[d.name] = None
        if to_come is not None and d.measured in to_come:
            to_come.add(d.name)  # the measured value may come: the estimate is not yet used
            continue
        for estimate in estimates[d.name]:
            if estimate.condition is None:
                condition = True
            elif to_come is None:
                condition = estimate.when(env)
            else:
                condition = interpret(estimate.condition, env, to_come)
            if condition is None:
                break  # which estimate applies is not known
            if condition is False:
                continue
            inputs = {}
            for parameter, name in estimate.inputs:
                if (value := get(name)) is None:
                    break
                inputs[parameter] = value
            else:
                result = _calculate(estimate.function, inputs)
                if result is not None:
                    env[d.name] = result
                    shown = {name: inputs[parameter] for parameter, name in estimate.inputs}
                    estimated[d.name] = Used(estimate.calculator, shown)
            break
        if to_come is not None and env[d.name] is None:
            estimates_ = protocol.estimates.get(d.name, ())
            conditions = [e.when.names for e in estimates_ if e.when is not None]
            if _reads_any(d.sources, to_come) or any(_reads_any(c, to_come) for c in conditions):
                to_come.add(d.name)
    for name in tables:
        rows = protocol.tables[name]
        env[name] = _look_up(rows, env, to_come or ())
        if (
            to_come is not None
            and env[name] is None
            and any(_reads_any(condition.names, to_come) for condition, _ in rows)
        ):
            to_come.add(name)
    return estimated


def _reads_any(names: Iterable[str], to_come: set[str]) -> bool:
    return any(n in to_come for n in names)


def _calculate(function: Callable[..., float], inputs: dict[str, Any]) -> float | None:
    try:
        value = float(function(**inputs))
    except (ArithmeticError, ValueError, TypeError):
        return None
    return value if math.isfinite(value) else None


def _look_up(
    rows: tuple[tuple[Any, float], ...], env: Mapping[str, Any], to_come: Collection[str] = ()
) -> float | None:
    """The first row whose condition holds; unknown when an earlier row's is unknown
    (``to_come``: as :func:`~.expressions.interpret` reads it)."""
    for condition, value in rows:
        holds = interpret(condition.node, env, to_come) if to_come else condition.evaluate(env)
        if holds is True:
            return value
        if holds is None:
            return None
    return None


def statuses(protocol: Protocol, ctx: Context, criteria: list[str] | None = None) -> list[Status]:
    """Each criterion's status (all when None), without the details."""
    rules = _plan(protocol).rules
    wanted = protocol.criteria if criteria is None else criteria
    return [_status(rules[cid], ctx) for cid in wanted]


def _polarity(rule: _Rule, result: Any) -> Status:
    if rule.exclusion and result is not None:
        result = not result
    return "unknown" if result is None else ("met" if result else "failed")


def _status(rule: _Rule, ctx: Context, env: Mapping[str, Any] | None = None) -> Status:
    env = ctx.env if env is None else env
    status = _polarity(rule, rule.evaluate(env))
    if status == "failed" and rule.confirm and ctx.estimated:
        estimates = [n for n in rule.names if n in ctx.estimated]
        if estimates:
            without = {**env, **dict.fromkeys(estimates)}
            if _polarity(rule, rule.evaluate(without)) != "failed":
                return "confirm"
    return status


def outcome(protocol: Protocol, criterion_id: str, ctx: Context) -> Outcome:
    return _outcome(protocol, criterion_id, _plan(protocol).rules[criterion_id], ctx)


def _outcome(protocol: Protocol, criterion_id: str, rule: _Rule, ctx: Context) -> Outcome:
    env = ctx.env
    status = _status(rule, ctx)
    values, estimated = _read(rule, ctx)
    open_variables: list[str] = []
    if status == "confirm":
        for name in estimated:
            measured = protocol.derived[name].measured
            open_variables.append(measured or name)
    elif status == "unknown":
        unknown = [n for n in rule.names if env.get(n) is None]
        for name in rule.names:
            if env.get(name) is None:
                behind = rule.inputs[name]
            elif rule.confirm and name in ctx.estimated:
                # the rule wants the measured value, read and unknown, in place of the estimate
                behind = [m] if (m := protocol.derived[name].measured) else []
            else:
                continue
            open_variables += [
                v
                for v in behind
                if v in ctx.applicable and env.get(v) is None and v not in open_variables
            ]
        if not open_variables:  # unknown only through what was not asked or has no table row
            open_variables = unknown
    return Outcome(criterion_id, status, values, estimated, tuple(open_variables))


def _read(rule: _Rule, ctx: Context) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The known values a rule read (the screening date aside) and its estimated names."""
    values = {n: v for n in rule.names if (v := ctx.env.get(n)) is not None}
    values.pop(SCREENING_DATE, None)
    return values, tuple(n for n in rule.names if n in ctx.estimated)


def given(
    protocol: Protocol,
    criterion_id: str,
    ctx: Context,
    status: Status,
    open_variables: tuple[str, ...] = (),
) -> Outcome:
    """An outcome decided elsewhere (the SQL engine), with what the rule read from ``ctx``."""
    values, estimated = _read(_plan(protocol).rules[criterion_id], ctx)
    return Outcome(criterion_id, status, values, estimated, open_variables)


def evaluate(
    protocol: Protocol, answers: Mapping[str, Any], screened_on: date | None = None
) -> list[Outcome]:
    """Every criterion's outcome, in the order of the dialog file."""
    ctx = context(protocol, answers, screened_on)
    return outcomes(protocol, ctx)


def outcomes(protocol: Protocol, ctx: Context) -> list[Outcome]:
    rules = _plan(protocol).rules
    return [_outcome(protocol, cid, rules[cid], ctx) for cid in protocol.criteria]


def status_of_each(protocol: Protocol, ctx: Context) -> dict[str, Status]:
    """Every criterion's status, in the dialog file's order (no details: see ``outcome``)."""
    return dict(zip(_plan(protocol).rules, each_status(protocol, ctx), strict=True))


def each_status(protocol: Protocol, ctx: Context) -> tuple[Status, ...]:
    """:func:`status_of_each` without the criteria's ids (see :func:`positions`)."""
    plan = _plan(protocol)
    found: tuple[Status, ...] = plan.together(ctx.env)
    if plan.confirming and "failed" in found:  # a failure may rest only on an estimate
        fixed = list(found)
        for index, rule in plan.confirming:
            if fixed[index] == "failed":
                fixed[index] = _status(rule, ctx)
        found = tuple(fixed)
    return found


def positions(protocol: Protocol) -> dict[str, int]:
    """Each criterion's position in :func:`each_status`'s tuple (the dialog file's order)."""
    found: dict[str, int] = _plan(protocol).positions
    return found


def clocks_read(protocol: Protocol, criterion_id: str) -> tuple[str, ...]:
    """The anchors and the screening date the criterion's rule reads, in that order."""
    clocks: tuple[str, ...] = _plan(protocol).clocks[criterion_id]
    return clocks


def estimates_used(protocol: Protocol, ctx: Context, found: Mapping[str, Status]) -> list[str]:
    """The estimated values some criterion's status rests on (an idle estimate is not used)."""
    plan = _plan(protocol)
    used = []
    for name in ctx.estimated:
        without = {**ctx.env, name: None}
        if any(_status(plan.rules[cid], ctx, without) != found[cid] for cid in plan.readers[name]):
            used.append(name)
    return sorted(used)


def status_with(
    protocol: Protocol, criterion_id: str, ctx: Context, changes: dict[str, Any]
) -> Status:
    """The criterion's status if ``changes`` replaced some values (e.g. a later date)."""
    return _status(_plan(protocol).rules[criterion_id], ctx, {**ctx.env, **changes})
