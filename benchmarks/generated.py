"""Generated protocols of any size, for measuring how costs grow (not clinical).

Every protocol draws its questions from one shared pool, defined once, so any number of
them pass the shared-variable check and can be screened together with ``--protocol all``.
Each criterion reads one or two questions: a numeric threshold, a yes/no, a choice, or a
date window counted from the screening date.
"""

from __future__ import annotations

import json
import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

POOL = 400  # questions in the shared pool


def pool_question(index: int) -> dict[str, Any]:
    kind = index % 5
    name = f"v{index:03d}"
    if kind == 0:
        return {"variable": name, "type": "yes_no", "text": f"Yes or no {index}?"}
    if kind == 1:
        return {
            "variable": name,
            "type": "choice",
            "choices": ["a", "b", "c"],
            "text": f"C{index}?",
        }
    if kind == 2:
        return {"variable": name, "type": "date_or_none", "text": f"Date {index}?"}
    return {"variable": name, "type": "number", "min": 0, "max": 100, "text": f"Number {index}?"}


def criterion(index: int, question: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    name = question["variable"]
    rule = {
        "yes_no": f"not {name}",
        "choice": f"{name} != 'c'",
        "date_or_none": f"not (screening_date < {name} + months(6))",
        "number": f"{name} <= {20 + index % 60}",
    }[question["type"]]
    if other["type"] == "number" and index % 3 == 0:
        rule = f"{rule} or {other['variable']} >= 90"
    return {
        "id": f"I{index}",
        "kind": "inclusion",
        "label": f"criterion {index}",
        "source": f"Criterion {index}.",
        "met_when": rule,
    }


def protocol(number: int, criteria: int, seed: int = 0) -> dict[str, Any]:
    """A protocol with ``criteria`` criteria over about as many pool questions."""
    rng = random.Random(seed * 7919 + number)
    count = min(POOL, criteria)
    chosen = sorted(rng.sample(range(POOL), count))
    questions = [pool_question(i) for i in chosen]
    rules = [
        criterion(i, questions[i % count], questions[(i * 31 + 7) % count]) for i in range(criteria)
    ]
    return {
        "id": f"gen-{number:02d}",
        "title": f"Generated protocol {number} ({criteria} criteria)",
        "version": "1",
        "questions": questions,
        "criteria": rules,
    }


def write_protocols(directory: Path, count: int, criteria: int = 40) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    yaml = YAML()
    paths = []
    for number in range(count):
        path = directory / f"gen-{number:02d}.yaml"
        with path.open("w", encoding="utf-8") as out:
            yaml.dump(protocol(number, criteria), out)
        paths.append(path)
    return paths


def write_patients(
    path: Path, rows: int, screened_on: date, variables: set[str], seed: int = 1
) -> None:
    """Rows answering ``variables`` of the pool (about a fifth unknown), as JSON Lines."""
    rng = random.Random(seed)
    asked = [i for i in range(POOL) if pool_question(i)["variable"] in variables]
    with path.open("w", encoding="utf-8") as out:
        for row in range(rows):
            record: dict[str, Any] = {"referral": f"G-{row}", "screened_on": str(screened_on)}
            for index in asked:
                if rng.random() < 0.2:
                    continue
                q = pool_question(index)
                if q["type"] == "yes_no":
                    record[q["variable"]] = rng.random() < 0.1
                elif q["type"] == "choice":
                    record[q["variable"]] = rng.choice("aab")
                elif q["type"] == "date_or_none":
                    days = rng.randint(30, 2000)
                    record[q["variable"]] = (
                        "none" if rng.random() < 0.5 else str(screened_on - timedelta(days=days))
                    )
                else:
                    record[q["variable"]] = rng.randint(0, 60)
            out.write(json.dumps(record) + "\n")
