"""The rules' pieces written as SQL text: names, constants, conditions and calculators.

Every identifier is quoted and every constant written as an escaped literal. A bound
condition is written over *slots*, each name's value as SQL (a ``date_or_none`` name has
a "never" flag too): SQL's NULL logic is Kleene's, like ours, so ``and``, ``or`` and
``not`` carry over; comparisons propagate NULL, and a date compared with a ``none`` date
is false. A calculator is SQL arithmetic in the order ``calculators.py`` computes it.
``sql.py`` puts these pieces together into a protocol's query; ``interpret``
(expressions.py) is the reference meaning.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from .calculators import DECIMALS
from .expressions import (
    And,
    AnyOf,
    Compare,
    Const,
    Known,
    Member,
    Name,
    Node,
    Not,
    Or,
    Ordinal,
    Shift,
)

Dialect = Literal["duckdb", "postgres", "ansi"]


class SqlError(ValueError):
    """A protocol or name that cannot be written as SQL for the chosen dialect."""


# -- literals and identifiers ----------------------------------------------------------------


def quote(name: str) -> str:
    """A quoted identifier (a dotted ``schema.table`` is quoted part by part)."""
    if not name or "\x00" in name:
        raise SqlError(f"not a usable SQL name: {name!r}")
    return ".".join('"' + part.replace('"', '""') + '"' for part in name.split("."))


def text_literal(value: str, dialect: Dialect) -> str:
    """An escaped string literal; PostgreSQL gets E'' when a backslash must stay one."""
    if "\x00" in value:
        raise SqlError("a text with a NUL character cannot be written as SQL")
    quoted = value.replace("'", "''")
    if dialect == "postgres" and "\\" in value:
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return f"'{quoted}'"


def double_type(dialect: Dialect) -> str:
    return "DOUBLE" if dialect == "duckdb" else "DOUBLE PRECISION"


def literal(value: bool | int | float | str, dialect: Dialect) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        # A plain 0.85 is DECIMAL/NUMERIC in DuckDB and PostgreSQL: the arithmetic and the
        # comparisons must see the same double Python does.
        return f"CAST({value!r} AS {double_type(dialect)})"
    if isinstance(value, str):
        return text_literal(value, dialect)
    raise SqlError(f"not a constant: {value!r}")


def null(sql_type: str) -> str:
    return f"CAST(NULL AS {sql_type})"


def case_sql(whens: list[str], otherwise: str | None, sql_type: str) -> str:
    """``CASE <whens> ELSE <otherwise> END``; with no WHEN (SQL requires one), ``otherwise``."""
    if not whens:
        return f"({otherwise or null(sql_type)})"
    rest = f" ELSE {otherwise}" if otherwise else ""
    return f"(CASE {' '.join(whens)}{rest} END)"


# -- values as SQL ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Slot:
    """A name's value in SQL: ``value`` (NULL when unknown) and, for a date that may be
    ``none``, ``never`` (TRUE: none, FALSE: a date, NULL: unknown; the value is then NULL)."""

    value: str
    never: str | None = None

    def known(self) -> str:
        return f"({self.never if self.never is not None else self.value} IS NOT NULL)"

    def unknown(self) -> str:
        return f"({self.never if self.never is not None else self.value} IS NULL)"


Env = Mapping[str, Slot]
_OPS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "==": "=", "!=": "<>"}


class ExpressionWriter:
    """Bound expression trees written as SQL over an environment of slots."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        # a shifted date's SQL -> the column already holding it (filled by sql._Compiler._shifts)
        self.shifted: dict[str, str] = {}

    def boolean(self, node: Node, env: Env) -> str:
        if isinstance(node, And | Or):
            word = " AND " if isinstance(node, And) else " OR "
            return "(" + word.join(self.boolean(p, env) for p in node.parts) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.boolean(node.part, env)})"
        if isinstance(node, Compare):
            return self.compare(node, env)
        if isinstance(node, Member):
            return self.contains(env[node.collection].value, (node.item,), node.negated)
        if isinstance(node, AnyOf):
            return self.contains(env[node.collection].value, node.items, node.negated)
        if isinstance(node, Known):
            slot = env[node.name]
            return slot.unknown() if node.negated else slot.known()
        if isinstance(node, Name):
            return env[node.name].value
        if isinstance(node, Const) and isinstance(node.value, bool):
            return literal(node.value, self.dialect)
        raise SqlError(f"not a condition: {node!r}")

    def value(self, node: Node, env: Env) -> Slot:
        if isinstance(node, Name):
            return env[node.name]
        if isinstance(node, Const):
            return Slot(literal(node.value, self.dialect))
        if isinstance(node, Shift):
            base = self.value(node.base, env)
            return Slot(self.shift(base.value, node.amount, node.unit), base.never)
        if isinstance(node, Ordinal):
            cases = " ".join(
                f"WHEN {text_literal(choice, self.dialect)} THEN {position}"
                for choice, position in node.positions
            )
            return Slot(f"(CASE {env[node.name].value} {cases} END)")
        raise SqlError(f"not a value: {node!r}")

    def compare(self, node: Compare, env: Env) -> str:
        left, right = self.value(node.left, env), self.value(node.right, env)
        test = f"({left.value} {_OPS[node.op]} {right.value})"
        nevers = [s.never for s in (left, right) if s.never is not None]
        if not node.dates or not nevers:
            return test  # NULL on either side gives NULL, as in interpret
        # A 'none' date lies in no window, even beside an unknown (as in interpret): FALSE
        # AND anything is FALSE. An unknown date has a NULL flag and value, so NULL follows;
        # cheaper than a CASE.
        return "(" + " AND ".join([f"(NOT {n})" for n in nevers] + [test]) + ")"

    def shift(self, base: str, amount: int, unit: str) -> str:
        if unit in ("days", "weeks"):
            days = amount * (7 if unit == "weeks" else 1)
            if self.dialect != "ansi":
                return self.shifted.get(sql := f"({base} + {days})", sql)
            count, what = days, "DAY"
        else:
            count, what = amount * (12 if unit == "years" else 1), "MONTH"
        sign = "+" if count >= 0 else "-"
        # Both engines add calendar months with the end-of-month clamp, as dates.shift does.
        sql = f"CAST({base} {sign} INTERVAL '{abs(count)}' {what} AS DATE)"
        return self.shifted.get(sql, sql)

    def contains(self, collection: str, items: Sequence[str], negated: bool) -> str:
        literals = [text_literal(i, self.dialect) for i in items]
        if self.dialect == "duckdb":
            tests = [f"list_contains({collection}, {i})" for i in literals]
        elif self.dialect == "postgres":
            tests = [f"({i} = ANY({collection}))" for i in literals]
        else:
            wanted = ", ".join(literals)
            tests = [
                f"(CASE WHEN {collection} IS NULL THEN {null('BOOLEAN')} ELSE EXISTS "
                f"(SELECT 1 FROM UNNEST({collection}) AS u(c) WHERE u.c IN ({wanted})) END)"
            ]
        found = tests[0] if len(tests) == 1 else "(" + " OR ".join(tests) + ")"
        return f"(NOT {found})" if negated else found


# -- calculators ------------------------------------------------------------------------------


def calculator_sql(name: str, inputs: Mapping[str, str], dialect: Dialect) -> str:
    """The calculator as SQL arithmetic in the order ``calculators.py`` computes it; NULL
    where the Python function refuses its inputs (a sex other than female/male, a value
    that must be positive)."""
    d = double_type(dialect)

    def num(value: float) -> str:
        return f"CAST({value!r} AS {d})"

    sex = inputs.get("sex")
    female = f"({sex} = 'female')" if sex else ""
    checks: list[str] = []
    if sex:
        checks.append(f"{sex} IN ('female', 'male')")
    positive = {
        "cockcroft_gault": ("weight_kg", "serum_creatinine_mg_dl"),
        "ckd_epi_2021": ("serum_creatinine_mg_dl",),
        "schwartz_bedside": ("height_cm", "serum_creatinine_mg_dl"),
        "bmi": ("weight_kg", "height_cm"),
        "bsa_mosteller": ("weight_kg", "height_cm"),
    }[name]
    checks += [f"{inputs[p]} > 0" for p in positive]
    age = inputs.get("age")
    if name == "cockcroft_gault":
        w, scr = inputs["weight_kg"], inputs["serum_creatinine_mg_dl"]
        base = f"((140 - {age}) * CAST({w} AS {d}) / (72 * CAST({scr} AS {d})))"
        formula = f"(CASE WHEN {female} THEN {base} * {num(0.85)} ELSE {base} END)"
    elif name == "ckd_epi_2021":
        scr = inputs["serum_creatinine_mg_dl"]
        kappa = f"(CASE WHEN {female} THEN {num(0.7)} ELSE {num(0.9)} END)"
        alpha = f"(CASE WHEN {female} THEN {num(-0.241)} ELSE {num(-0.302)} END)"
        ratio = f"(CAST({scr} AS {d}) / {kappa})"
        egfr = (
            f"(142 * POWER(LEAST({ratio}, {num(1.0)}), {alpha}) "
            f"* POWER(GREATEST({ratio}, {num(1.0)}), {num(-1.2)}) "
            f"* POWER({num(0.9938)}, CAST({age} AS {d})))"
        )
        formula = f"(CASE WHEN {female} THEN {egfr} * {num(1.012)} ELSE {egfr} END)"
    elif name == "schwartz_bedside":
        h, scr = inputs["height_cm"], inputs["serum_creatinine_mg_dl"]
        formula = f"({num(0.413)} * CAST({h} AS {d}) / CAST({scr} AS {d}))"
    elif name == "bmi":
        w, h = inputs["weight_kg"], inputs["height_cm"]
        formula = f"(CAST({w} AS {d}) / POWER(CAST({h} AS {d}) / 100, 2))"
    else:  # bsa_mosteller
        w, h = inputs["weight_kg"], inputs["height_cm"]
        formula = f"SQRT(CAST({h} AS {d}) * CAST({w} AS {d}) / 3600)"
    known = " AND ".join(f"{v} IS NOT NULL" for v in inputs.values())
    exact = f"CAST(CAST({formula} AS DECIMAL(38, {DECIMALS})) AS {d})"  # calculators._exact
    return f"(CASE WHEN {known} AND {' AND '.join(checks)} THEN {exact} END)"
