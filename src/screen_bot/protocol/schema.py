"""The dialog-file schema: what a protocol file in ``dialogs/`` may contain."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Identifier = Field(pattern=r"^[a-z][a-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AltUnit(_Strict):
    """Another unit a numeric answer may be given in, converted by division."""

    unit: str = Field(min_length=1)
    divide_by: float = Field(gt=0)


class Question(_Strict):
    variable: str = Identifier
    type: Literal["int", "number", "yes_no", "choice"]
    text: str = Field(min_length=1)
    help: str = ""
    min: float | None = None
    max: float | None = None
    unit: str | None = None
    choices: list[str] | None = None
    also_accepts: list[AltUnit] = []
    uln_ratio: bool = Field(False, description="accept 'value/ULN' and convert to a multiple")
    time_unit: Literal["month", "year"] | None = Field(
        None, description="the value grows by one per month/year of calendar time"
    )
    when: str | None = None

    @model_validator(mode="after")
    def _type_fields(self) -> Question:
        numeric = self.type in ("int", "number")
        if numeric and (self.min is None or self.max is None):
            raise ValueError(f"a {self.type} question needs both min and max")
        if numeric and self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min {self.min} is greater than max {self.max}")
        if not numeric and (self.min is not None or self.max is not None):
            raise ValueError(f"a {self.type} question takes no min/max")
        distinct = self.choices and len(set(self.choices)) == len(self.choices)
        if self.type == "choice" and not distinct:
            raise ValueError("a choice question needs a list of distinct choices")
        if self.type != "choice" and self.choices:
            raise ValueError(f"a {self.type} question takes no choices")
        if (self.also_accepts or self.uln_ratio or self.time_unit) and not numeric:
            raise ValueError("also_accepts, uln_ratio and time_unit are for int/number questions")
        return self


class Derived(_Strict):
    """A value computed from answers: the measured variable if known, else a calculator."""

    name: str = Identifier
    label: str
    unit: str = ""
    measured: str | None = None
    calculator: str
    inputs: dict[str, str]


class Criterion(_Strict):
    id: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")
    kind: Literal["inclusion", "exclusion"]
    label: str = Field(min_length=1)
    source: str = Field(min_length=1, description="the protocol's own words")
    met_when: str | None = None
    applies_when: str | None = None
    judgment: bool = False
    recoverable: Literal["retest", "wait"] | None = None

    @model_validator(mode="after")
    def _one_rule(self) -> Criterion:
        if self.kind == "inclusion" and (self.met_when is None or self.applies_when is not None):
            raise ValueError("an inclusion criterion needs met_when (and no applies_when)")
        if self.kind == "exclusion" and (self.applies_when is None or self.met_when is not None):
            raise ValueError("an exclusion criterion needs applies_when (and no met_when)")
        return self

    @property
    def rule(self) -> str:
        return self.met_when if self.kind == "inclusion" else self.applies_when  # type: ignore[return-value]


class DialogFile(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    title: str
    version: str
    source: str = Field("", description="where the protocol text comes from")
    questions: list[Question] = Field(min_length=1)
    derived: list[Derived] = []
    criteria: list[Criterion] = Field(min_length=1)
