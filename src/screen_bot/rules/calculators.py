"""Named calculators that a dialog file may use for derived values, each with its units.

Every calculator takes serum creatinine in mg/dL, weight in kg, height in cm, age in years
and sex as ``"female"`` or ``"male"``; a dialog converts other units before it calls one.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field

SEXES = ("female", "male")
DECIMALS = 9  # a result's decimals: see _exact


def _exact(value: float) -> float:
    """``value`` without binary floating-point error: (140 − 14) × 30 / (72 × 1.05) is 50
    exactly, and 49.99999999999999 in floats, the wrong side of "≥ 50". Answers carry a few
    decimals, so no decision rests on what lies past the ninth."""
    return round(value, DECIMALS)


def cockcroft_gault(age: int, sex: str, weight_kg: float, serum_creatinine_mg_dl: float) -> float:
    """Creatinine clearance in mL/min: (140 − age) × weight / (72 × SCr), × 0.85 for a woman."""
    _check_sex(sex)
    _check_positive(weight_kg=weight_kg, serum_creatinine_mg_dl=serum_creatinine_mg_dl)
    clearance = (140 - age) * weight_kg / (72 * serum_creatinine_mg_dl)
    return _exact(clearance * 0.85 if sex == "female" else clearance)


def ckd_epi_2021(age: int, sex: str, serum_creatinine_mg_dl: float) -> float:
    """eGFR in mL/min/1.73 m² by the race-free 2021 CKD-EPI creatinine equation."""
    _check_sex(sex)
    _check_positive(serum_creatinine_mg_dl=serum_creatinine_mg_dl)
    female = sex == "female"
    kappa, alpha = (0.7, -0.241) if female else (0.9, -0.302)
    ratio = serum_creatinine_mg_dl / kappa
    egfr: float = 142 * min(ratio, 1) ** alpha * max(ratio, 1) ** -1.200 * 0.9938**age
    return _exact(egfr * 1.012 if female else egfr)


def schwartz_bedside(height_cm: float, serum_creatinine_mg_dl: float) -> float:
    """eGFR in mL/min/1.73 m² for children: 0.413 × height cm / SCr (bedside Schwartz 2009)."""
    _check_positive(height_cm=height_cm, serum_creatinine_mg_dl=serum_creatinine_mg_dl)
    return _exact(0.413 * height_cm / serum_creatinine_mg_dl)


def bmi(weight_kg: float, height_cm: float) -> float:
    """Body-mass index in kg/m²: weight kg / (height m)²."""
    _check_positive(weight_kg=weight_kg, height_cm=height_cm)
    return _exact(weight_kg / (height_cm / 100) ** 2)


def bsa_mosteller(weight_kg: float, height_cm: float) -> float:
    """Body-surface area in m² by Mosteller: √(height cm × weight kg / 3600)."""
    _check_positive(weight_kg=weight_kg, height_cm=height_cm)
    return _exact(math.sqrt(height_cm * weight_kg / 3600))


def _check_sex(sex: str) -> None:
    # Every formula here has a sex term (or none); guessing "male" for anything else would
    # silently give a woman a clearance 18 % too high.
    if sex not in SEXES:
        raise ValueError(f"sex must be 'female' or 'male', not {sex!r}")


def _check_positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name} must be greater than 0, not {value!r}")


@dataclass(frozen=True)
class Calculator:
    """A formula a dialog may name, with what a coordinator is shown about it."""

    function: Callable[..., float]
    parameters: tuple[str, ...]
    unit: str
    description: str
    citation: str
    parameter_units: dict[str, str] = field(hash=False)

    def __post_init__(self) -> None:
        signature = tuple(inspect.signature(self.function).parameters)
        if self.parameters != signature or set(self.parameter_units) != set(signature):
            raise ValueError(f"{self.function.__name__}: parameters must be {signature}")


# Typical adult body measures, for made-up patients (quiz cases): a height of 44 cm is
# within a question's 40–250 but no adult's. Bedside Schwartz is for children, whose height
# goes with their age: none given.
_ADULT_BODY = {"weight_kg": (50.0, 120.0), "height_cm": (150.0, 195.0)}
TYPICAL_INPUTS: dict[str, dict[str, tuple[float, float]]] = {
    "cockcroft_gault": _ADULT_BODY,
    "bmi": _ADULT_BODY,
    "bsa_mosteller": _ADULT_BODY,
}

_UNITS = {
    "age": "years",
    "sex": "",
    "weight_kg": "kg",
    "height_cm": "cm",
    "serum_creatinine_mg_dl": "mg/dL",
}


def _calculator(
    function: Callable[..., float], unit: str, description: str, citation: str
) -> Calculator:
    parameters = tuple(inspect.signature(function).parameters)
    return Calculator(
        function, parameters, unit, description, citation, {p: _UNITS[p] for p in parameters}
    )


CALCULATORS: dict[str, Calculator] = {
    "cockcroft_gault": _calculator(
        cockcroft_gault,
        "mL/min",
        "Cockcroft-Gault: (140 − age) × weight kg / (72 × serum creatinine mg/dL), × 0.85 female",
        "Cockcroft DW, Gault MH. Nephron 1976;16:31-41",
    ),
    "ckd_epi_2021": _calculator(
        ckd_epi_2021,
        "mL/min/1.73 m²",
        "CKD-EPI 2021: 142 × min(SCr/κ, 1)^α × max(SCr/κ, 1)^−1.200 × 0.9938^age"
        " × 1.012 female; κ 0.7 female, 0.9 male; α −0.241 female, −0.302 male",
        "Inker LA et al. N Engl J Med 2021;385:1737-49",
    ),
    "schwartz_bedside": _calculator(
        schwartz_bedside,
        "mL/min/1.73 m²",
        "bedside Schwartz: 0.413 × height cm / serum creatinine mg/dL",
        "Schwartz GJ et al. J Am Soc Nephrol 2009;20:629-37",
    ),
    "bmi": _calculator(
        bmi,
        "kg/m²",
        "BMI: weight kg / (height m)²",
        "WHO. Obesity: preventing and managing the global epidemic. TRS 894, 2000",
    ),
    "bsa_mosteller": _calculator(
        bsa_mosteller,
        "m²",
        "Mosteller BSA: √(height cm × weight kg / 3600)",
        "Mosteller RD. N Engl J Med 1987;317:1098",
    ),
}
