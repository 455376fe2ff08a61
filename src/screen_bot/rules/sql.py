"""A protocol's rules compiled to one SQL query, for pre-screening a whole population.

The query reads a table with one column per variable (NULL: unknown) plus ``referral`` and
``screened_on`` and returns, per row, what the Python engine (``verdict.build``) decides:
the verdict, the failed criterion ids, the open items, for each failed time-based
criterion the first day it is met, the failures that may pass later, the answers outside
their plausibility limits and the estimates the verdict used. SQL's NULL logic is
Kleene's, like ours, so ``and``, ``or`` and ``not`` carry over; the rest is spelt out:

- comparisons propagate NULL; a date compared with a ``none`` date is false (a
  ``date_or_none`` column becomes a DATE plus a "never" flag);
- a question's condition is evaluated on the answers asked before it (the first CTEs, one
  level of conditions at a time); an unasked question reads as NULL afterwards;
- derived values are the measured value, else the first applicable calculator, as SQL
  arithmetic; lookup tables are the first row whose condition holds;
- a status per criterion, computed once per row as a Kleene boolean (TRUE failed, FALSE met,
  NULL open: unknown or waiting for a confirmation); the verdict is their ``OR`` (TRUE: not
  eligible, FALSE: eligible, NULL: unresolved), and the outputs read these columns;
- each shifted date a rule reads (``d + months(2)``) is computed once per row, as a column;
- "met from": each date a rule compares with the clock (and the day after it) is tried as
  the clock, and for a window on the clock's side the days around the other side with the
  window undone (as ``windows.py``); the earliest one after today on which the rule is met
  is the answer.

A row with a value the Python engine refuses (``answers.check_value``: a number out of
its range or not finite, a choice not written exactly as one, a date after the screening
date or before 1900, a ``date_or_none`` text that is neither a date nor 'none') gets no
verdict: ``invalid`` names those variables, and its values are read as NULL (a CAST of a
bad text or arithmetic on an infinity would stop the whole query).

Every identifier is quoted and every constant written as an escaped literal; only names
checked by the dialog-file checker and the tree's constants reach the text.
Names, constants, conditions and calculators are written by ``sql_expressions.py``;
``interpret`` (expressions.py) is the reference meaning; tests hold the query equal to
``verdict.build`` on generated patients in DuckDB and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .dates import EARLIEST_YEAR, NEVER
from .expressions import (
    SCREENING_DATE,
    Compare,
    Name,
    Node,
    Shift,
    names_read,
    walk,
)
from .sql_expressions import (
    Dialect,
    Env,
    ExpressionWriter,
    Slot,
    SqlError,
    calculator_sql,
    case_sql,
    double_type,
    literal,
    null,
    quote,
    text_literal,
)

if TYPE_CHECKING:
    from ..protocol.model import Protocol
    from ..protocol.schema import Question

DIALECTS: tuple[Dialect, ...] = ("duckdb", "postgres", "ansi")
REFERRAL = "referral"
SCREENED_ON = "screened_on"
# The dictionary's default screening date is today in UTC; CURRENT_DATE is the session's
# local date, a day off for hours of every day west or east of UTC.
UTC_TODAY = "CAST(CURRENT_TIMESTAMP AT TIME ZONE 'UTC' AS DATE)"
_GROUP = 8  # criteria per lookup array of the failed text (2**8 texts each)
# A YYYY-MM-DD text naming a day of the calendar from 1900 on (a SQL SIMILAR TO pattern)
_YEAR = "(19|[2-9][0-9])[0-9]{2}"
CALENDAR_DAY = (
    f"{_YEAR}-((0[13578]|1[02])-(0[1-9]|[12][0-9]|3[01])|(0[469]|11)-(0[1-9]|[12][0-9]|30)"
    "|02-(0[1-9]|1[0-9]|2[0-8]))"
    "|(19|[2-9][0-9])(0[48]|[2468][048]|[13579][26])-02-29"  # leap years: 4n, not 100n...
    "|([2468][048]|[3579][26])00-02-29"  # ...unless 400n
)
_LAST_DAY = "DATE '9999-12-31'"  # a Python date's last day: the Python engine finds none later
_PG_IDENTIFIER_BYTES = 63


# -- column types ---------------------------------------------------------------------------


def column_type(question: Question, dialect: Dialect) -> str:
    """The SQL type a table's column for ``question`` must have."""
    if question.type == "int":
        return "BIGINT"
    if question.type == "number":
        return double_type(dialect)
    if question.type == "yes_no":
        return "BOOLEAN"
    if question.type == "choice" and question.multiple:
        return "VARCHAR ARRAY" if dialect == "ansi" else "VARCHAR[]"
    if question.type == "date":
        return "DATE"
    return "VARCHAR"  # choice, text, date_or_none ('YYYY-MM-DD' or 'none')


def input_columns(protocol: Protocol, dialect: Dialect = "duckdb") -> dict[str, str]:
    """Every column the query reads, with its SQL type (``referral`` and ``screened_on`` too)."""
    columns = {REFERRAL: "VARCHAR", SCREENED_ON: "DATE"}
    for q in protocol.spec.questions:
        if q.type != "text":
            columns[q.variable] = column_type(q, dialect)
    return columns


# -- the query --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timed:
    """The output columns of one time-based criterion."""

    criterion: str
    meets_from: str  # DATE: the first day it no longer fails (NULL: not failed, or never)
    window_closed: str  # BOOLEAN: failed, and waiting can never meet it
    anchor: str | None  # VARCHAR: the anchor it counts from (only when the rule reads one)


@dataclass(frozen=True)
class Query:
    """The SQL text and the names of its output columns."""

    protocol_id: str
    dialect: Dialect
    text: str
    timed: tuple[Timed, ...]
    # derived value -> its column ``estimate:<name>`` (the estimate the verdict used)
    estimates: dict[str, str] = field(default_factory=dict)
    # detail columns (``detail=True``): variable -> (value, never or None, asked or None)
    answers: dict[str, tuple[str, str | None, str | None]] = field(default_factory=dict)
    derived: dict[str, tuple[str, str]] = field(default_factory=dict)  # value, estimate index
    tables: dict[str, str] = field(default_factory=dict)


def compile_protocol(
    protocol: Protocol,
    dialect: Dialect = "duckdb",
    *,
    table: str = "answers",
    detail: bool = False,
    keep: Sequence[str] = (),
) -> Query:
    """The query screening every row of ``table`` against ``protocol``.

    Output: ``referral``, ``screened_on``, ``verdict`` (eligible | not_eligible |
    unresolved), ``failed`` (criterion ids, space-separated, in the file's order), ``open``
    (``criterion:variable:kind`` items, space-separated; only when unresolved) and per
    time-based criterion ``meets_from:<id>``, ``window_closed:<id>`` (and
    ``meets_from_anchor:<id>`` when it reads an anchor), ``recoverable`` (failed
    ``criterion:retest|wait`` items), ``warnings`` (variables outside their plausibility
    limits) and per derived value ``estimate:<name>`` (the estimate the verdict used,
    rounded as shown). ``detail`` adds every answer as
    the rules saw it, each derived value and table value (what the JSON verdict shows);
    ``keep`` names more columns of ``table`` to pass through.
    """
    if dialect not in DIALECTS:
        raise SqlError(f"unknown dialect {dialect!r}; use one of {', '.join(DIALECTS)}")
    return _Compiler(protocol, dialect).query(table, detail, tuple(keep))


class _Compiler:
    def __init__(self, protocol: Protocol, dialect: Dialect) -> None:
        self.p = protocol
        self.dialect = dialect
        self.x = ExpressionWriter(dialect)
        self.index = {v: i for i, v in enumerate(protocol.order)}
        self.level = self._levels()
        self.meets: dict[str, str] = {}  # a time-based criterion's first day met (_waiting)
        if dialect == "postgres":
            for name in input_columns(protocol, dialect):
                if len(name.encode()) > _PG_IDENTIFIER_BYTES:
                    raise SqlError(
                        f"'{name}' is longer than PostgreSQL's {_PG_IDENTIFIER_BYTES}-byte names"
                    )

    # -- names and slots ------------------------------------------------------------------

    def _question_slot(self, variable: str) -> Slot:
        i = self.index[variable]
        never = f'"n{i}"' if self.p.questions[variable].type == "date_or_none" else None
        return Slot(f'"e{i}"', never)

    def _asked(self, variable: str) -> str | None:
        """SQL boolean: the question was asked (None: always asked)."""
        return f'"a{self.index[variable]}"' if variable in self.p.when else None

    def _sql_type(self, name: str) -> str:
        kind = self.p.kinds[name]
        if kind.base == "date":
            return "DATE"
        if kind.base == "number":
            return double_type(self.dialect)
        if kind.base == "yes_no":
            return "BOOLEAN"
        return "VARCHAR[]" if kind.base == "set" else "VARCHAR"

    def _questions_env(self) -> dict[str, Slot]:
        env = {v: self._question_slot(v) for v in self.p.order if v in self.p.kinds}
        env[SCREENING_DATE] = Slot('"d"')
        return env

    def rule_env(self) -> dict[str, Slot]:
        env = self._questions_env()
        for j, d in enumerate(self.p.spec.derived):
            env[d.name] = Slot(f'"v{j}"')
        for k, name in enumerate(self.p.tables):
            env[name] = Slot(f'"t{k}"')
        return env

    def _condition_env(self) -> dict[str, Slot]:
        """What a question's condition sees: earlier answers, the screening date, and a table
        looked up on the asked answers alone (as ``applicable_questions`` does)."""
        env = self._questions_env()
        for name, rows in self.p.tables.items():
            inputs = set(self.p.inputs_of(name))
            table_env = {
                n: (env[n] if n in inputs else Slot(null(self._sql_type(n)))) for n in self.p.kinds
            }
            env[name] = Slot(self._look_up(rows, table_env))
        return env

    def _look_up(self, rows: Sequence[tuple[object, float]], env: Env) -> str:
        sql = null(double_type(self.dialect))
        for condition, value in reversed(rows):
            test = self.x.boolean(condition.node, env)  # type: ignore[attr-defined]
            found = literal(float(value), self.dialect)
            sql = f"(CASE {test} WHEN TRUE THEN {found} WHEN FALSE THEN {sql} END)"
        return sql

    def _levels(self) -> dict[str, int]:
        """0 for a question always asked; else one more than the deepest input its condition
        reads (so each level's conditions read only answers settled before it)."""
        level: dict[str, int] = {}
        for v in self.p.order:
            if v not in self.p.when:
                level[v] = 0
                continue
            inputs = [i for n in self.p.when[v].names for i in self.p.inputs_of(n)]
            level[v] = 1 + max((level[i] for i in inputs), default=0)
        return level

    # -- stages ---------------------------------------------------------------------------

    def query(self, table: str, detail: bool, keep: tuple[str, ...]) -> Query:
        kept = [f'{quote(name)} AS "k{i}"' for i, name in enumerate(keep)]
        ctes: list[tuple[str, list[str]]] = [("_in", self._input_columns() + kept)]
        checks, refused = self._refused()
        ctes.append(("_ck", checks))
        ctes.append(("_iv", [f'{refused} AS "i"']))
        ctes.append(("_vl", self._values()))
        ctes += self._applicability()
        values, indexes = self._derived()
        ctes.append(("_dv", values))
        ctes.append(("_tb", indexes + self._tables()))
        ctes.append(("_sh", self._shifts()))
        ctes.append(("_st", self._statuses()))
        timed, waiting_columns, final_waits = self._waiting()
        failing = " OR ".join(f'"s{c}"' for c, *_ in self._criteria()) or "FALSE"
        ctes.append(("_mf", [f'({failing}) AS "g"', *waiting_columns]))
        outputs = self._outputs() + final_waits + self._recoverable() + self._warnings()
        estimates = {d.name: f"estimate:{d.name}" for d in self.p.spec.derived}
        outputs += self._estimates(estimates)
        outputs += [f'"k{i}" AS {quote(name)}' for i, name in enumerate(keep)]
        info = Query(self.p.id, self.dialect, "", timed, estimates)
        if detail:
            outputs += self._detail(info)
        parts = []
        previous = None
        for name, columns in ctes:
            select = ",\n    ".join((["*"] if previous else []) + columns) if columns else "*"
            source = quote(table) if previous is None else quote(previous)
            # PostgreSQL copies a CTE's expressions into every place that reads them: each
            # date text would be parsed, and each answer checked, once per reader of the
            # result (many times per row) without these barriers
            fenced = name in ("_in", "_ck", "_iv") and self.dialect != "duckdb"
            fence = "\n  OFFSET 0 ROWS" if fenced else ""
            parts.append(f"{quote(name)} AS (\n  SELECT\n    {select}\n  FROM {source}{fence}\n)")
            previous = name
        text = (
            f"-- {self.p.id} {self.p.version} (sha256 {self.p.sha256[:12]}), dialect "
            f"{self.dialect}; generated by screen-bot, do not edit\n"
            "WITH\n"
            + ",\n".join(parts)
            + "\nSELECT\n  "
            + ",\n  ".join(outputs)
            + f"\nFROM {quote(previous or '_in')}"
        )
        return Query(
            self.p.id,
            self.dialect,
            text,
            timed,
            estimates,
            info.answers,
            info.derived,
            info.tables,
        )

    def _input_columns(self) -> list[str]:
        """The table's columns under our names: ``q<i>`` each answer as its SQL type; for a
        ``date_or_none`` text, ``q<i>`` its date and ``o<i>`` whether it says none. A text
        that is neither is NULL in both (``_refused`` names it); never a failed CAST."""
        columns = [
            f'{quote(REFERRAL)} AS "r"',
            f'COALESCE(CAST({quote(SCREENED_ON)} AS DATE), {UTC_TODAY}) AS "d"',
        ]
        for v in self.p.order:
            q = self.p.questions[v]
            if q.type == "text":
                continue
            i = self.index[v]
            column = quote(v)
            if q.type == "date":
                columns.append(f'CAST({column} AS DATE) AS "q{i}"')
            elif q.type == "date_or_none":
                # as parse_iso_date: around the text spaces do not count, nor case in 'none'
                text = f"TRIM({column})"
                columns.append(f'{self._iso_date(text)} AS "q{i}"')
                columns.append(f'(LOWER({text}) = {text_literal(NEVER, self.dialect)}) AS "o{i}"')
            elif q.type == "choice" and q.multiple and self.dialect == "postgres":
                # README allows VARCHAR[] or text[]; PostgreSQL's array operators (<@) take
                # two arrays of one element type, so the column is read as text[] either way
                columns.append(f'CAST({column} AS TEXT[]) AS "q{i}"')
            else:
                columns.append(f'{column} AS "q{i}"')
        return columns

    def _iso_date(self, text: str) -> str:
        """The DATE a ``YYYY-MM-DD`` text names; NULL for any other text or a day that is
        not in the calendar. DuckDB: a date that DuckDB writes back as the same text (its
        other forms, such as 2026/01/05, are not; a regular expression cost a third of the
        query). PostgreSQL has no TRY_CAST: a pattern admits only calendar days (29
        February in leap years), so that the one CAST cannot fail. Years before 1900 are
        refused anyway."""
        if self.dialect == "duckdb":
            day = f"TRY_CAST({text} AS DATE)"
            return f"(CASE WHEN CAST({day} AS VARCHAR) = {text} THEN {day} END)"
        form = text_literal(CALENDAR_DAY, self.dialect)
        return f"(CASE WHEN {text} SIMILAR TO {form} THEN CAST({text} AS DATE) END)"

    def _refused(self) -> tuple[list[str], str]:
        """The check stage's columns, ``c<i>`` per checked answer: TRUE when the Python
        engine refuses its value (``answers.check_value``); and the refused variables,
        space-separated, from them: NULL when every value is accepted (or unknown)."""
        tests = [(v, t) for v in self.p.order if (t := self._refusal(v)) is not None]
        if not tests:
            return [], null("VARCHAR")
        checks = [f'{t} AS "c{self.index[v]}"' for v, t in tests]
        flags = [f'"c{self.index[v]}"' for v, _ in tests]
        names = self._join(
            [
                f"(CASE WHEN {flag} THEN {text_literal(v, self.dialect)} END)"
                for flag, (v, _) in zip(flags, tests, strict=True)
            ]
        )
        return checks, f"(CASE WHEN {' OR '.join(flags)} THEN {names} END)"

    def _refusal(self, variable: str) -> str | None:
        """SQL boolean: TRUE when the answer is given and refused (NULL or FALSE otherwise);
        None for a type whose every value is accepted (yes_no; text is not read)."""
        q = self.p.questions[variable]
        i = self.index[variable]
        value = f'"q{i}"'
        if q.type in ("int", "number"):
            assert q.min is not None and q.max is not None  # the file checker requires both
            # NaN and infinities lie outside any range, in DuckDB and PostgreSQL alike; an
            # int's whole limits stay integers (no cast of the column to compare)
            whole = q.type == "int" and q.min == int(q.min) and q.max == int(q.max)
            low, high = (
                literal(int(x) if whole else float(x), self.dialect) for x in (q.min, q.max)
            )
            outside = f"NOT ({value} BETWEEN {low} AND {high})"
            if q.type == "int":  # a DOUBLE column given for a whole number: 40.5 is refused
                return f"({outside} OR {value} <> FLOOR({value}))"
            return f"({outside})"
        if q.type == "choice":
            choices = ", ".join(text_literal(c, self.dialect) for c in q.choices or [])
            if not q.multiple:
                return f"({value} NOT IN ({choices}))"
            if self.dialect == "duckdb":  # list_has_all passes over NULL items
                listed = f"[{choices}]"
                return (
                    f"(NOT list_has_all({listed}, {value}) OR list_count({value}) < len({value}))"
                )
            if self.dialect == "postgres":
                return f"(NOT ({value} <@ CAST(ARRAY[{choices}] AS TEXT[])))"
            return (
                f"EXISTS (SELECT 1 FROM UNNEST({value}) AS u(c) "
                f"WHERE u.c IS NULL OR u.c NOT IN ({choices}))"
            )
        if q.type in ("date", "date_or_none"):
            side = f'{value} < "d"' if q.future else f'{value} > "d"'
            tests = [f"{value} < DATE '{EARLIEST_YEAR}-01-01'", side]
            if q.type == "date_or_none":  # neither a date nor 'none'
                tests.insert(0, f'(NOT "o{i}" AND {value} IS NULL)')
            return "(" + " OR ".join(tests) + ")"
        return None

    def _values(self) -> list[str]:
        """Each answer as the rules read it (``e<i>``; ``r<i>`` before a condition decides
        whether it is asked; ``n<i>``/``rn<i>``: a 'none' date). A row with a refused value
        gets no verdict; its numbers and dates are NULL, so that no arithmetic on them (a
        calculator's DECIMAL, a shifted date) can stop the query."""
        columns = []
        for v in self.p.order:
            q = self.p.questions[v]
            if q.type == "text":
                continue
            i = self.index[v]
            value, never = (f'"r{i}"', f'"rn{i}"') if v in self.p.when else (f'"e{i}"', f'"n{i}"')
            if q.type in ("int", "number", "date", "date_or_none"):
                columns.append(f'(CASE WHEN "i" IS NULL THEN "q{i}" END) AS {value}')
            else:
                columns.append(f'"q{i}" AS {value}')
            if q.type == "date_or_none":
                columns.append(f'(CASE WHEN "i" IS NULL THEN "o{i}" END) AS {never}')
        return columns

    def _applicability(self) -> list[tuple[str, list[str]]]:
        env = self._condition_env()
        top = max(self.level.values(), default=0)
        stages: list[tuple[str, list[str]]] = []
        for level in range(1, top + 1):
            asked, settled = [], []
            for v in self.p.order:
                if self.level[v] != level or self.p.questions[v].type == "text":
                    continue
                i = self.index[v]
                condition = self.p.when[v]
                value = self.x.boolean(condition.node, env)
                inputs = []
                for n in sorted(condition.names):
                    for inp in self.p.inputs_of(n):
                        if inp not in inputs:
                            inputs.append(inp)
                open_inputs = [self._asked_unknown(inp) for inp in inputs]
                undecided = " OR ".join(open_inputs) if open_inputs else "FALSE"
                # true: asked; false: not; unknown: asked if an asked input is unknown
                asked.append(f'COALESCE({value}, {undecided}) AS "a{i}"')
                settled.append(f'(CASE WHEN "a{i}" THEN "r{i}" END) AS "e{i}"')
                if self.p.questions[v].type == "date_or_none":
                    settled.append(f'(CASE WHEN "a{i}" THEN "rn{i}" END) AS "n{i}"')
            stages.append((f"_a{level}", asked))
            stages.append((f"_e{level}", settled))
        return stages

    def _asked_unknown(self, variable: str) -> str:
        """SQL boolean (never NULL): the question was asked and is unknown."""
        slot = self._question_slot(variable)
        asked = self._asked(variable)
        return f"({asked} AND {slot.unknown()})" if asked else slot.unknown()

    def _derived(self) -> tuple[list[str], list[str]]:
        """Each derived value (``v``) and the 1-based estimate it came from (``x``; NULL when
        measured or not known), as ``evaluation.context`` computes them. ``x`` reads ``v``
        (a later CTE): the chosen estimate's formula is not computed a second time."""
        env = self.rule_env()
        double = double_type(self.dialect)
        values_columns, index_columns = [], []
        for j, d in enumerate(self.p.spec.derived):
            values, indexes = [], []
            value_else: str | None = None
            index_else: str | None = None
            if d.measured:
                measured = env[d.measured]
                values.append(f"WHEN {measured.known()} THEN CAST({measured.value} AS {double})")
                indexes.append(f"WHEN {measured.known()} THEN {null('INTEGER')}")
            for position, estimate in enumerate(self.p.estimates[d.name], start=1):
                inputs = {p: env[v].value for p, v in estimate.use.inputs.items()}
                formula = calculator_sql(estimate.use.calculator, inputs, self.dialect)
                # in this estimate's branch the value is its formula's
                used = f'(CASE WHEN "v{j}" IS NOT NULL THEN {position} END)'
                if estimate.when is None:
                    value_else, index_else = formula, used
                    break
                test = self.x.boolean(estimate.when.node, env)
                # An unknown condition stops the search: which estimate applies is not known.
                values += [
                    f"WHEN {test} IS NULL THEN {null(double)}",
                    f"WHEN {test} THEN {formula}",
                ]
                indexes += [
                    f"WHEN {test} IS NULL THEN {null('INTEGER')}",
                    f"WHEN {test} THEN {used}",
                ]
            values_columns.append(f'{case_sql(values, value_else, double)} AS "v{j}"')
            index_columns.append(f'{case_sql(indexes, index_else, "INTEGER")} AS "x{j}"')
        return values_columns, index_columns

    def _tables(self) -> list[str]:
        env = self.rule_env()
        return [
            f'{self._look_up(rows, env)} AS "t{k}"' for k, rows in enumerate(self.p.tables.values())
        ]

    # -- statuses -------------------------------------------------------------------------

    def _criteria(self) -> list[tuple[int, str, Node, bool]]:
        return [
            (c, cid, self.p.rules[cid].node, self.p.criteria[cid].kind == "exclusion")
            for c, cid in enumerate(self.p.criteria)
        ]

    def _without_estimates(self, env: Env, node: Node) -> dict[str, Slot] | None:
        """The environment with each derived value the rule reads set to its measured value
        (what it is when nothing was estimated); None when the rule reads none."""
        derived = [n for n in sorted(names_read(node)) if n in self.p.derived]
        if not derived:
            return None
        changed = dict(env)
        for name in derived:
            measured = self.p.derived[name].measured
            changed[name] = (
                Slot(f"CAST({env[measured].value} AS {double_type(self.dialect)})")
                if measured
                else Slot(null(double_type(self.dialect)))
            )
        return changed

    def _shifts(self) -> list[str]:
        """Each date a rule shifts, once per row as a column ``h<k>``; from here on the
        expressions read the column. Month arithmetic costs DuckDB a timestamp round trip,
        and a time-based rule's status and met-from days read the same shift many times."""
        env = self.rule_env()
        found: list[str] = []
        for *_, node, _ in self._criteria():
            for part in walk(node):
                if isinstance(part, Shift) and (sql := self.x.value(part, env).value) not in found:
                    found.append(sql)
            read = names_read(node)
            for clock in self._clocks():
                if clock in read:
                    targets = (t for t, _ in self._undone_windows(node, clock, env))
                    found += [t for t in targets if t not in found]
        self.x.shifted = {sql: f'"h{k}"' for k, sql in enumerate(found)}
        return [f'{sql} AS "h{k}"' for k, sql in enumerate(found)]

    def _failing(self, node: Node, exclusion: bool, env: Env | None = None) -> str:
        """SQL boolean: TRUE when the rule fails the criterion, FALSE when it meets it, NULL
        when unknown."""
        result = self.x.boolean(node, self.rule_env() if env is None else env)
        return result if exclusion else f"(NOT {result})"

    def _status(self, cid: str, node: Node, exclusion: bool, env: Env | None = None) -> str:
        """The criterion's status ``s<c>`` on ``env`` (the row's values when None): TRUE
        failed, FALSE met, NULL open (unknown, or failed on an estimate that the measured
        value must confirm)."""
        env = self.rule_env() if env is None else env
        failing = self._failing(node, exclusion, env)
        if self.p.criteria[cid].confirm_estimate is None:
            return failing
        without = self._without_estimates(env, node)
        if without is None:
            return failing
        other = self.x.boolean(node, without)
        still = f"({other}) IS TRUE" if exclusion else f"({other}) IS FALSE"
        # failed only if the rule also fails without the estimate, else open (NULL)
        return f"({failing} AND ({still} OR {null('BOOLEAN')}))"

    def _confirmable(self, cid: str, node: Node) -> Env | None:
        """The environment without estimates when a failure on an estimate waits for the
        measured value (``confirm_estimate``); None when it is a plain failure."""
        if self.p.criteria[cid].confirm_estimate is None:
            return None
        return self._without_estimates(self.rule_env(), node)

    def _statuses(self) -> list[str]:
        """Per criterion ``s<c>``: TRUE failed, FALSE met, NULL open (unknown, or failed on an
        estimate that the measured value must confirm). Booleans, not status codes: DuckDB's
        boolean ``OR`` over them is several times cheaper than CAST, COALESCE and GREATEST."""
        return [
            f'{self._status(cid, node, exclusion)} AS "s{c}"'
            for c, cid, node, exclusion in self._criteria()
        ]

    # -- met from -------------------------------------------------------------------------

    def _clocks(self) -> list[str]:
        """In the order of :func:`~.evaluation.clocks_read`: anchors first."""
        return [*self.p.spec.anchors, SCREENING_DATE]

    def _waiting(self) -> tuple[tuple[Timed, ...], list[str], list[str]]:
        env = self.rule_env()
        timed, columns, outputs = [], [], []
        for c, cid, node, exclusion in self._criteria():
            read = names_read(node)
            clocks = [k for k in self._clocks() if k in read]
            if not clocks:
                continue
            firsts, past = [], []
            for n, clock in enumerate(clocks):
                first = self._first_day(cid, node, exclusion, clock, env)
                columns.append(f'(CASE WHEN "s{c}" THEN {first} END) AS "w{c}_{n}"')
                firsts.append(f'"w{c}_{n}"')
                past.append(self._past_day(cid, node, exclusion, clock, env))
            meets = firsts[0] if len(firsts) == 1 else f"COALESCE({', '.join(firsts)})"
            self.meets[cid] = meets
            names = Timed(
                cid,
                f"meets_from:{cid}",
                f"window_closed:{cid}",
                f"meets_from_anchor:{cid}" if clocks != [SCREENING_DATE] else None,
            )
            timed.append(names)
            outputs.append(f'(CASE WHEN "i" IS NULL THEN {meets} END) AS {quote(names.meets_from)}')
            # as windows.waiting: failed, no day ahead, and a day before the screening date
            # would not have failed (the failure rests on the window)
            closed = f"({' OR '.join(past)}) IS TRUE"
            outputs.append(
                f'(CASE WHEN "i" IS NOT NULL THEN NULL '
                f'WHEN "s{c}" IS TRUE AND {meets} IS NULL THEN {closed} ELSE FALSE END)'
                f" AS {quote(names.window_closed)}"
            )
            if names.anchor is not None:
                outputs.append(f"{self._anchor(c, clocks, firsts)} AS {quote(names.anchor)}")
        return tuple(timed), columns, outputs

    def _anchor(self, c: int, clocks: list[str], firsts: list[str]) -> str:
        """The anchor a failed rule's day counts from: the clock that found the day, else the
        first clock the rule reads (NULL for the screening date, as the verdict shows)."""

        def named(clock: str) -> str:
            return null("VARCHAR") if clock == SCREENING_DATE else text_literal(clock, self.dialect)

        found = " ".join(
            f"WHEN {f} IS NOT NULL THEN {named(k)}" for k, f in zip(clocks, firsts, strict=True)
        )
        otherwise = named(clocks[0])
        return (
            f'(CASE WHEN "i" IS NOT NULL OR "s{c}" IS NOT TRUE THEN {null("VARCHAR")} {found} '
            f"ELSE {otherwise} END)"
        )

    def _first_day(self, cid: str, node: Node, exclusion: bool, clock: str, env: Env) -> str:
        """The earliest candidate day after the clock on which the criterion no longer fails
        (met, or open; NULL: none)."""
        now = env[clock]
        candidates = self._change_days(node, clock, env, (0, 1))
        if not candidates:
            return null("DATE")
        tests = []
        for day in candidates:
            unfailed = (
                f"({self._status(cid, node, exclusion, {**env, clock: Slot(day)})}) IS NOT TRUE"
            )
            tests.append(
                f"(CASE WHEN {day} > {now.value} AND {day} <= {_LAST_DAY} AND {unfailed} "
                f"THEN {day} END)"
            )
        return self._earliest(tests)

    def _earliest(self, days: list[str]) -> str:
        """The earliest of ``days`` that is not NULL (NULL: none is). DuckDB's and
        PostgreSQL's LEAST pass over NULLs; the standard's (SQL:2023), Oracle's and MySQL's
        give NULL if any argument is, so the ANSI text takes MIN over the days as rows. (A
        sentinel for "no day" would stand for a day too: 9999-12-31 is one.)"""
        if len(days) == 1:
            return days[0]
        if self.dialect != "ansi":
            return f"LEAST({', '.join(days)})"
        rows = ", ".join(f"({d})" for d in days)
        return f'(SELECT MIN("m"."d") FROM (VALUES {rows}) AS "m"("d"))'

    def _past_day(self, cid: str, node: Node, exclusion: bool, clock: str, env: Env) -> str:
        """Boolean: some candidate day before the screening date (the day before each date
        too: the days before the first one are one stretch) on which the criterion would
        not fail, the clock being known (FALSE when no date is read)."""
        now, today = env[clock], env[SCREENING_DATE]
        tests = [
            f"({day} < {today.value} AND "
            f"({self._status(cid, node, exclusion, {**env, clock: Slot(day)})}) IS NOT TRUE)"
            for day in self._change_days(node, clock, env, (-1, 0, 1))
        ]
        if not tests:
            return "FALSE"
        return f"({now.value} IS NOT NULL AND ({' OR '.join(tests)}))"

    def _change_days(self, node: Node, clock: str, env: Env, moves: tuple[int, ...]) -> list[str]:
        """Each date the rule compares with ``clock`` (NULL when unknown or a 'none' date),
        moved by each of ``moves`` days, once each."""
        found: list[str] = []
        for part in walk(node):
            is_date_name = isinstance(part, Name) and self.p.kinds[part.name].base == "date"
            if not (isinstance(part, Shift) or is_date_name) or clock in names_read(part):
                continue
            day = self.x.value(part, env).value
            for move in moves:
                candidate = day if move == 0 else self.x.shift(day, move, "days")
                if candidate not in found:
                    found.append(candidate)
        for target, margin in self._undone_windows(node, clock, env):
            day = self.x.shifted.get(target, target)
            # windows.py tries the target ± margin, and for the past the day before each:
            # moves (0, 1) give -margin..margin here, (-1, 0, 1) one day further back
            for move in range(min(moves) - margin, max(moves) + margin):
                candidate = day if move == 0 else self.x.shift(day, move, "days")
                if candidate not in found:
                    found.append(candidate)
        return found

    def _undone_windows(self, node: Node, clock: str, env: Env) -> list[tuple[str, int]]:
        """For each comparison with a window on ``clock``'s side (``clock - days(42) <
        event``): the clock's day that meets the other side, the window undone (``event +
        days(42)``, as SQL without ``_shifts``' columns: it is one of them), and the
        days either side of it the change may lie on (``windows._shifted_clock_days``:
        a month window clamps a day by up to three days)."""
        raw = ExpressionWriter(self.dialect)
        found = []
        for part in walk(node):
            if not isinstance(part, Compare):
                continue
            for side, other in ((part.left, part.right), (part.right, part.left)):
                windows = []
                while isinstance(side, Shift):
                    windows.append(side)
                    side = side.base
                if not windows or side != Name(clock) or clock in names_read(other):
                    continue
                target = raw.value(other, env).value
                for window in windows:  # clock + a + b = target  ⇔  clock = target - b - a
                    target = raw.shift(target, -window.amount, window.unit)
                found.append((target, 4 * len(windows)))
        return found

    # -- outputs ----------------------------------------------------------------------------

    def _join(self, pieces: Sequence[str]) -> str:
        """Space-separated non-NULL pieces ('' when none)."""
        if not pieces:
            return "''"
        if self.dialect == "ansi":
            glued = " || ".join(f"COALESCE({p} || ' ', '')" for p in pieces)
            return f"TRIM(TRAILING ' ' FROM {glued})"
        return f"concat_ws(' ', {', '.join(pieces)})"

    def _outputs(self) -> list[str]:
        verdict = (
            '(CASE WHEN "i" IS NOT NULL THEN NULL WHEN "g" THEN \'not_eligible\' '
            "WHEN NOT \"g\" THEN 'eligible' ELSE 'unresolved' END)"
        )
        open_items = [
            self._open(c, cid, node, exclusion) for c, cid, node, exclusion in self._criteria()
        ]
        return [
            f'"r" AS {quote(REFERRAL)}',
            f'"d" AS {quote(SCREENED_ON)}',
            f'{verdict} AS "verdict"',
            f'(CASE WHEN "i" IS NULL THEN {self._failed()} END) AS "failed"',
            f'(CASE WHEN "i" IS NOT NULL THEN NULL WHEN "g" IS NULL THEN {self._join(open_items)} '
            f"ELSE '' END) AS \"open\"",
            '"i" AS "invalid"',
        ]

    def _recoverable(self) -> list[str]:
        """``recoverable``: each failed criterion that a later screening could pass, as
        ``criterion:how`` (``retest`` or ``wait``), space-separated, in the file's order; as
        a reason's ``recoverable``: a time-based rule that no day ahead meets (its window
        closed, or never met) cannot be waited for."""
        items = []
        for c, cid, *_ in self._criteria():
            how = self.p.criteria[cid].recoverable
            if how is None:
                continue
            test = f'"s{c}"'
            if how == "wait" and cid in self.meets:
                test = f"({test} AND {self.meets[cid]} IS NOT NULL)"
            items.append((test, f"{cid}:{how}"))
        return [f'(CASE WHEN "i" IS NULL THEN {self._listed(items)} END) AS "recoverable"']

    def _warnings(self) -> list[str]:
        """``warnings``: the answers outside their plausibility limits (asked and known),
        space-separated, in the file's order, as the verdict's ``warnings`` name them."""
        env = self._questions_env()
        double = double_type(self.dialect)
        items = []
        for q in self.p.limited_questions:
            value = f"CAST({env[q.variable].value} AS {double})"
            sides = [
                f"{value} {op} {literal(float(limit), self.dialect)}"
                for op, limit in (("<", q.confirm_below), (">", q.confirm_above))
                if limit is not None
            ]
            items.append((f"({' OR '.join(sides)})", q.variable))
        return [f'(CASE WHEN "i" IS NULL THEN {self._listed(items)} END) AS "warnings"']

    def _estimates(self, columns: dict[str, str]) -> list[str]:
        """``estimate:<name>`` per derived value: the estimate's value, rounded to one
        decimal as the verdict shows it, when some criterion's status rests on it
        (``evaluation.estimates_used``: the status differs with the value unknown); NULL
        when measured, unknown or not used. A status is a Kleene boolean here, so an open
        one is told apart as ``confirm`` (failing on the estimate) or unknown too."""
        env = self.rule_env()
        double = double_type(self.dialect)
        outputs = []
        for j, d in enumerate(self.p.spec.derived):
            without = {**env, d.name: Slot(null(double))}
            differs = []
            for c, cid, node, exclusion in self._criteria():
                if d.name not in names_read(node):
                    continue
                status = self._status(cid, node, exclusion, without)
                differs.append(f'("s{c}" IS DISTINCT FROM {status})')
                if self.p.criteria[cid].confirm_estimate is not None:
                    confirm = f'({self._failing(node, exclusion)} IS TRUE AND "s{c}" IS NULL)'
                    confirm_without = (
                        f"({self._failing(node, exclusion, without)} IS TRUE AND {status} IS NULL)"
                    )
                    differs.append(f"({confirm} <> {confirm_without})")
            used = " OR ".join(differs) or "FALSE"
            outputs.append(
                f'(CASE WHEN "i" IS NULL AND "x{j}" IS NOT NULL AND ({used}) THEN '
                f"{self._tenths(env[d.name].value)} END) AS {quote(columns[d.name])}"
            )
        return outputs

    def _tenths(self, x: str) -> str:
        """The double ``x`` rounded to one decimal as Python's ``round(x, 1)`` does: to the
        nearer tenth of x's exact binary value, a tie to the even tenth. A decimal ROUND
        would round 50.05 up, where Python rounds down: the double nearest 50.05 lies
        below it. So the side of x against the midpoint m = (2k + 1) / 20 between the
        tenths k / 10 either side is found exactly: 20x - (2k + 1), with 20x = 16x + 4x as
        an error-free sum (Knuth's TwoSum; times 16 and 4 are exact)."""
        d = double_type(self.dialect)

        def num(value: float) -> str:
            return f"CAST({value!r} AS {d})"

        k = f"FLOOR({x} * {num(10.0)})"
        a, b = f"({x} * {num(16.0)})", f"({x} * {num(4.0)})"
        s = f"({a} + {b})"
        bb = f"({s} - {a})"
        error = f"(({a} - ({s} - {bb})) + ({b} - {bb}))"
        side = f"(({s} - ({num(2.0)} * {k} + {num(1.0)})) + {error})"
        odd = f"({k} - {num(2.0)} * FLOOR({k} / {num(2.0)}))"
        tenth = f"(CASE WHEN {side} > 0 THEN {k} + 1 WHEN {side} < 0 THEN {k} ELSE {k} + {odd} END)"
        return f"({tenth} / {num(10.0)})"

    def _failed(self) -> str:
        """The failed criterion ids, space-separated, in the file's order."""
        return self._listed([(f'"s{c}"', cid) for c, cid, *_ in self._criteria()])

    def _listed(self, items: Sequence[tuple[str, str]]) -> str:
        """The texts of ``items`` (SQL boolean, text) whose boolean is TRUE, space-separated,
        in order. DuckDB and PostgreSQL look each group of items up in an array of every
        combination's text, indexed by the group's booleans as bits: a few array reads and a
        short ``concat_ws`` instead of one CASE per item and a ``concat_ws`` over them all,
        which cost DuckDB more than all the rules together. ANSI: the plain form."""
        if self.dialect == "ansi":
            cases = [
                f"(CASE WHEN {test} THEN {text_literal(t, self.dialect)} END)" for test, t in items
            ]
            return self._join(cases)
        parts = []
        bit = "DOUBLE" if self.dialect == "duckdb" else "INTEGER"  # PostgreSQL: no bool to double
        for start in range(0, len(items), _GROUP):
            group = items[start : start + _GROUP]
            # DOUBLE in DuckDB: its INTEGER arithmetic checks every step for overflow
            bits = " + ".join(
                f"CAST({test} IS TRUE AS {bit}) * {1 << j}" for j, (test, _) in enumerate(group)
            )
            texts = [
                " ".join(t for j, (_, t) in enumerate(group) if chosen >> j & 1)
                for chosen in range(1 << len(group))
            ]
            listed = ", ".join(
                text_literal(t, self.dialect) if t else null("VARCHAR") for t in texts
            )
            parts.append(f"(ARRAY[{listed}])[CAST(1 + {bits} AS INTEGER)]")
        return self._join(parts)

    def _open(self, c: int, cid: str, node: Node, exclusion: bool) -> str:
        """The criterion's open items as ``criterion:variable:kind`` (``_outcome``'s order)."""
        env = self.rule_env()
        criterion = self.p.criteria[cid]
        names = sorted(names_read(node))

        def token(variable: str, what: str) -> str:
            return text_literal(f"{cid}:{variable}:{what}", self.dialect)

        def kind(variable: str) -> str:
            return "judgment" if criterion.judged(variable) else "missing"

        # unknown: each unknown name's asked-and-unknown inputs, once each, in order
        primary: list[str] = []
        conditions: list[str] = []
        seen: dict[str, list[str]] = {}
        wants_measured = criterion.confirm_estimate is not None
        for n in names:
            if n == SCREENING_DATE:
                continue
            measured = self.p.derived[n].measured if n in self.p.derived else None
            for v in self.p.inputs_of(n):
                lists = env[n].unknown()
                if wants_measured and v == measured:  # also read in place of an estimate
                    lists = f'({lists} OR "x{list(self.p.derived).index(n)}" IS NOT NULL)'
                earlier = seen.setdefault(v, [])
                test = " AND ".join([lists, self._asked_unknown(v)] + [f"NOT {e}" for e in earlier])
                earlier.append(lists)
                conditions.append(f"({test})")
                primary.append(f"(CASE WHEN {test} THEN {token(v, kind(v))} END)")
        fallback = [
            f"(CASE WHEN {env[n].unknown()} THEN {token(n, kind(n))} END)"
            for n in names
            if n != SCREENING_DATE
        ]
        unknown = self._join(fallback)
        if primary:
            unknown = (
                f"(CASE WHEN {' OR '.join(conditions)} THEN {self._join(primary)} "
                f"ELSE {unknown} END)"
            )
        confirm = [
            f'(CASE WHEN "x{list(self.p.derived).index(n)}" IS NOT NULL THEN '
            f"{token(self.p.derived[n].measured or n, 'confirm')} END)"
            for n in names
            if n in self.p.derived
        ]
        if self._confirmable(cid, node) is None:
            return f'(CASE WHEN "s{c}" IS NULL THEN {unknown} END)'  # open: unknown
        # open and known: failed on an estimate the measured value must confirm (the rule
        # reads a derived value, so there is a confirm item)
        failing = self._failing(node, exclusion)
        return (
            f'(CASE WHEN "s{c}" IS NULL THEN (CASE WHEN {failing} IS NULL THEN {unknown} '
            f"ELSE {self._join(confirm)} END) END)"
        )

    def _detail(self, info: Query) -> list[str]:
        columns = []
        for v in self.p.order:
            if self.p.questions[v].type == "text":
                continue
            i = self.index[v]
            slot = self._question_slot(v)
            asked = self._asked(v)
            info.answers[v] = (f"e{i}", f"n{i}" if slot.never else None, f"a{i}" if asked else None)
            columns.append(f'"e{i}"')
            if slot.never:
                columns.append(f'"n{i}"')
            if asked:
                columns.append(f'"a{i}"')
        for j, d in enumerate(self.p.spec.derived):
            info.derived[d.name] = (f"v{j}", f"x{j}")
            columns += [f'"v{j}"', f'"x{j}"']
        for k, name in enumerate(self.p.tables):
            info.tables[name] = f"t{k}"
            columns.append(f'"t{k}"')
        return columns
