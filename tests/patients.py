"""Shared patient answer sets for the tests."""

from __future__ import annotations

from datetime import date
from typing import Any

# The screening date of every answer set below (build(..., screened_on=SCREENED_ON)).
SCREENED_ON = date(2026, 1, 15)

# Every variable of the dictionary, given, for a woman of childbearing potential who
# agrees to contraception: eligible on every rule on SCREENED_ON.
ELIGIBLE: dict[str, Any] = {
    "age": 40,
    "sex": "female",
    "b_all_cd19_positive": True,
    "ph_negative": True,
    "high_risk_features": True,
    "transplant_date": date(2025, 10, 15),  # three months before SCREENED_ON
    "hematopoietic_reconstitution": True,
    "marrow_remission": True,
    "mrd_negative": True,
    "ecog": 1,
    "karnofsky": 80,
    "gvhd_grade_3_4_history": False,
    "active_gvhd": False,
    "ast_x_uln": 1.0,
    "alt_x_uln": 1.0,
    "bilirubin_x_uln": 1.0,
    "creatinine_x_uln": 1.0,
    "crcl_ml_min": 90.0,
    "weight_kg": 60.0,  # Cockcroft-Gault would give 78.7 mL/min (female, 40 y, 0.9 mg/dL)
    "serum_creatinine_mg_dl": 0.9,
    "lvef_percent": 65.0,
    "qtc_ms": 420.0,
    "arrhythmia": False,
    "last_mi_date": "none",
    "symptomatic_cad_on_medication": False,
    "severe_pulmonary_dysfunction": False,
    "childbearing_potential": True,
    "pregnant_or_lactating": False,
    "contraception_agreed": True,
    "hypersensitivity_to_study_drugs": False,
    "active_infection_or_bleeding": False,
    "last_vascular_event_date": "none",
    "psychiatric_condition_impairing_consent": False,
    "last_major_surgery_date": "none",
    "substance_abuse": False,
    "prior_solid_organ_transplant": False,
    "expected_survival_over_3_months": True,
    "other_investigator_concern": False,
    "consent_willing": True,
}

# The same patient as a batch row (JSON): dates in ISO form.
ELIGIBLE_JSON: dict[str, Any] = {
    k: v.isoformat() if isinstance(v, date) else v for k, v in ELIGIBLE.items()
}
