"""Seeded generator of patients (typed answers) and the typed text of one full screening."""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from screen_bot.answers import parse_text
from screen_bot.engine import Engine
from screen_bot.protocol import Protocol
from screen_bot.protocol.catalog import Catalog
from screen_bot.settings import default_dialogs_dir

# What a coordinator types for an eligible patient (crcl unknown: Cockcroft-Gault is asked).
TYPED = {
    "age": "42",
    "b_all_cd19_positive": "yes",
    "ph_negative": "yes",
    "high_risk_features": "yes",
    "transplant_date": "4 months ago",
    "hematopoietic_reconstitution": "yes",
    "marrow_remission": "yes",
    "mrd_negative": "yes",
    "gvhd_grade_3_4_history": "no",
    "active_gvhd": "no",
    "prior_solid_organ_transplant": "no",
    "ecog": "1",
    "karnofsky": "80",
    "sex": "female",
    "childbearing_potential": "yes",
    "pregnant_or_lactating": "no",
    "contraception_agreed": "yes",
    "ast_x_uln": "1.1",
    "alt_x_uln": "1.2",
    "bilirubin_x_uln": "1",
    "creatinine_x_uln": "1.1",
    "crcl_ml_min": "?",
    "weight_kg": "60",
    "serum_creatinine_mg_dl": "0.9",
    "lvef_percent": "62",
    "qtc_ms": "440",
    "arrhythmia": "no",
    "last_mi_date": "none",
    "symptomatic_cad_on_medication": "no",
    "severe_pulmonary_dysfunction": "no",
    "last_vascular_event_date": "never",
    "last_major_surgery_date": "none",
    "substance_abuse": "no",
    "hypersensitivity_to_study_drugs": "no",
    "active_infection_or_bleeding": "no",
    "psychiatric_condition_impairing_consent": "no",
    "expected_survival_over_3_months": "yes",
    "other_investigator_concern": "no",
    "consent_willing": "yes",
}
# One change each that fails a criterion (not eligible) ...
FAILING = [
    {"age": 70},
    {"ph_negative": False},
    {"transplant_date": (datetime.now(UTC) - timedelta(days=30)).date()},  # fails I4a
    {"ecog": 3},
    {"active_gvhd": True},
    {"qtc_ms": 480.0},
    {"lvef_percent": 40.0},
    {"consent_willing": False},
]
# ... and answers whose being unknown leaves the verdict open (unresolved).
OPENABLE = ["mrd_negative", "marrow_remission", "lvef_percent", "arrhythmia", "substance_abuse"]
LABELS = ("eligible", "not_eligible", "unresolved")


def protocol() -> Protocol:
    return Catalog(default_dialogs_dir()).get("blina-dli")


def eligible_answers(proto: Protocol) -> dict[str, Any]:
    return {v: parse_text(proto.questions[v], text) for v, text in TYPED.items()}


def patients(n: int, seed: int = 1) -> Iterator[tuple[str, dict[str, Any]]]:
    """(intended verdict, record) for n patients: about 40 % eligible, 40 % not, 20 % open."""
    rng = random.Random(seed)
    base = eligible_answers(protocol())
    for i in range(n):
        record: dict[str, Any] = {"referral": f"R-{i}", **base}
        record["age"] = rng.randint(18, 60)
        record["weight_kg"] = float(rng.randint(50, 90))
        draw = rng.random()
        if draw < 0.4:
            label = "eligible"
        elif draw < 0.8:
            label = "not_eligible"
            record.update(rng.choice(FAILING))
        else:
            label = "unresolved"
            for variable in rng.sample(OPENABLE, rng.randint(1, 2)):
                if rng.random() < 0.5:
                    record[variable] = None
                else:
                    del record[variable]
        yield label, record


def write_jsonl(path: Path, n: int, seed: int = 1) -> dict[str, int]:
    """Write n patients as JSON Lines; return how many of each intended verdict."""
    mix: Counter[str] = Counter()
    with path.open("w", encoding="utf-8") as out:
        for label, record in patients(n, seed):
            mix[label] += 1
            out.write(json.dumps(record, default=str) + "\n")  # dates as ISO
    return {label: mix[label] for label in LABELS}


def screening_texts(proto: Protocol) -> list[str]:
    """What a coordinator types, in order, for one full (eligible) screening."""
    engine = Engine(proto)
    session = engine.start()
    texts = []
    while (question := engine.question(session)) is not None:
        checklist = engine.checklist(session)
        if checklist is None:
            texts.append(TYPED[question.variable])
            engine.answer_text(session, TYPED[question.variable])
            continue
        items = engine.step_items(session)  # one line: the exceptions to the default, or 0
        ticks = {v: TYPED[v] == "yes" for v in items}
        texts.append(
            " ".join(str(n) for n, v in enumerate(items, 1) if ticks[v] != checklist.default) or "0"
        )
        engine.answer_items(session, ticks)
    assert engine.verdict(session).verdict == "eligible"
    return texts


if __name__ == "__main__":  # python -m benchmarks.patients N PATH: a file to profile with
    print(write_jsonl(Path(sys.argv[2]), int(sys.argv[1])))
