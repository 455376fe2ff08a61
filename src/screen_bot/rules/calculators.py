"""Named calculators (placeholder until the leaves branch lands with cited tests)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


def cockcroft_gault(age: int, sex: str, weight_kg: float, serum_creatinine_mg_dl: float) -> float:
    clearance = (140 - age) * weight_kg / (72 * serum_creatinine_mg_dl)
    return clearance * 0.85 if sex == "female" else clearance


def ckd_epi_2021(age: int, sex: str, serum_creatinine_mg_dl: float) -> float:
    kappa, alpha = (0.7, -0.241) if sex == "female" else (0.9, -0.302)
    ratio = serum_creatinine_mg_dl / kappa
    value = 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.2 * 0.9938**age
    return value * 1.012 if sex == "female" else value


def schwartz_bedside(height_cm: float, serum_creatinine_mg_dl: float) -> float:
    return 0.413 * height_cm / serum_creatinine_mg_dl


def bmi(weight_kg: float, height_cm: float) -> float:
    return weight_kg / (height_cm / 100) ** 2


def bsa_mosteller(weight_kg: float, height_cm: float) -> float:
    return math.sqrt(height_cm * weight_kg / 3600)


@dataclass(frozen=True)
class Calculator:
    function: Callable[..., Any]
    parameters: tuple[str, ...]
    description: str
    unit: str = ""
    parameter_units: dict[str, str] = field(default_factory=dict)
    citation: str = ""


_UNITS = {"age": "years", "weight_kg": "kg", "height_cm": "cm", "serum_creatinine_mg_dl": "mg/dL"}


def _calc(function: Callable[..., Any], unit: str, description: str) -> Calculator:
    params = tuple(function.__code__.co_varnames[: function.__code__.co_argcount])
    return Calculator(function, params, description, unit, {p: _UNITS.get(p, "") for p in params})


CALCULATORS: dict[str, Calculator] = {
    "cockcroft_gault": _calc(cockcroft_gault, "mL/min", "Cockcroft-Gault"),
    "ckd_epi_2021": _calc(ckd_epi_2021, "mL/min/1.73 m²", "CKD-EPI 2021"),
    "schwartz_bedside": _calc(schwartz_bedside, "mL/min/1.73 m²", "bedside Schwartz"),
    "bmi": _calc(bmi, "kg/m²", "BMI"),
    "bsa_mosteller": _calc(bsa_mosteller, "m²", "Mosteller BSA"),
}
