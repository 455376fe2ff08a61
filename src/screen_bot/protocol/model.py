"""A checked protocol: the dialog file's data with its expressions bound and compiled."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from ..rules.expressions import SCREENING_DATE, Expression
from ..rules.types import Kind
from .schema import (
    CalculatorUse,
    Checklist,
    Criterion,
    Derived,
    DialogFile,
    Question,
    Table,
)


@dataclass(frozen=True)
class Estimate:
    """One way to estimate a derived value; ``when`` None: always applicable."""

    use: CalculatorUse
    when: Expression | None


@dataclass(frozen=True)
class Protocol:
    """A validated protocol with its rules compiled; shared, read-only."""

    spec: DialogFile
    path: Path
    sha256: str
    kinds: dict[str, Kind]
    when: dict[str, Expression]  # question -> its condition
    rules: dict[str, Expression]  # criterion id -> its rule
    tables: dict[str, tuple[tuple[Expression, float], ...]]
    estimates: dict[str, tuple[Estimate, ...]]  # derived name -> its estimates, in order
    lines: dict[str, int | None] = field(default_factory=dict)  # question -> its line

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def version(self) -> str:
        return self.spec.version

    @property
    def title(self) -> str:
        return self.spec.title

    @cached_property
    def reference(self) -> dict[str, str]:
        """What a verdict names it by: its id, version and the file's sha256."""
        return {"id": self.id, "version": self.version, "sha256": self.sha256}

    @cached_property
    def questions(self) -> dict[str, Question]:
        return {q.variable: q for q in self.spec.questions}

    @cached_property
    def order(self) -> list[str]:
        return [q.variable for q in self.spec.questions]

    @cached_property
    def criteria(self) -> dict[str, Criterion]:
        return {c.id: c for c in self.spec.criteria}

    @cached_property
    def derived(self) -> dict[str, Derived]:
        return {d.name: d for d in self.spec.derived}

    @cached_property
    def table_specs(self) -> dict[str, Table]:
        return {t.name: t for t in self.spec.tables}

    def inputs_of(self, name: str) -> list[str]:
        """The questions a name stands for (a derived value or table expands to its inputs)."""
        if name in self.derived:
            found = list(self.derived[name].sources)
            for estimate in self.estimates.get(name, ()):
                if estimate.when is not None:
                    found += [n for n in sorted(estimate.when.names) if n not in found]
            return [n for n in found if n in self.questions]
        if name in self.tables:
            found = []
            for condition, _ in self.tables[name]:
                for n in sorted(condition.names):
                    for v in self.inputs_of(n):
                        if v not in found:
                            found.append(v)
            return found
        if name == SCREENING_DATE:
            return []
        return [name]

    @cached_property
    def criteria_reading(self) -> dict[str, list[str]]:
        """For each question, the criterion ids whose rule reads it, directly or derived."""
        reading: dict[str, list[str]] = {v: [] for v in self.order}
        for cid, expr in self.rules.items():
            for name in sorted(expr.names):
                for variable in self.inputs_of(name):
                    if cid not in reading[variable]:
                        reading[variable].append(cid)
        return reading

    @cached_property
    def limited_questions(self) -> tuple[Question, ...]:
        """Questions with plausibility limits (confirm_below / confirm_above)."""
        return tuple(
            q
            for q in self.spec.questions
            if q.confirm_below is not None or q.confirm_above is not None
        )

    @cached_property
    def dated_questions(self) -> frozenset[str]:
        """Questions answered with a date (or 'none')."""
        return frozenset(
            q.variable for q in self.spec.questions if q.type in ("date", "date_or_none")
        )

    @cached_property
    def text_questions(self) -> frozenset[str]:
        """Free-text answers: kept for the coordinator, never logged or exported."""
        return frozenset(q.variable for q in self.spec.questions if q.type == "text")

    @cached_property
    def checklists(self) -> dict[str, Checklist]:
        """For each question asked in a checklist, its checklist."""
        return {item: c for c in self.spec.checklists for item in c.items}

    @cached_property
    def aliases(self) -> dict[str, str]:
        """Every name a quick check may use for a question (lower case) -> its variable."""
        found = {q.variable: q.variable for q in self.spec.questions}
        for q in self.spec.questions:
            for alias in q.aliases:
                found.setdefault(name_key(alias), q.variable)
        return found


def name_key(name: str) -> str:
    """How a typed name is compared with variables and aliases: case and - / _ aside."""
    return "_".join(name.lower().replace("-", "_").split())
