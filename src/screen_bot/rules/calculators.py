"""Named calculators that a dialog file may use for derived values."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def cockcroft_gault(age: int, sex: str, weight_kg: float, serum_creatinine_mg_dl: float) -> float:
    """Creatinine clearance in mL/min: (140 − age) × weight / (72 × SCr), × 0.85 for a woman."""
    clearance = (140 - age) * weight_kg / (72 * serum_creatinine_mg_dl)
    return clearance * 0.85 if sex == "female" else clearance


@dataclass(frozen=True)
class Calculator:
    function: Callable[..., Any]
    parameters: tuple[str, ...]
    description: str


CALCULATORS: dict[str, Calculator] = {
    "cockcroft_gault": Calculator(
        cockcroft_gault,
        ("age", "sex", "weight_kg", "serum_creatinine_mg_dl"),
        "Cockcroft-Gault: (140 − age) × weight kg / (72 × serum creatinine mg/dL), × 0.85 female",
    ),
}
