"""Small synthetic format-2 dialog files for the tests: build a dict, dump it, load it."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from screen_bot.protocol import DialogFileError, Problem, Protocol, load

SCREENED_ON = date(2026, 1, 15)


def yes_no(variable: str, **extra: Any) -> dict[str, Any]:
    return {"variable": variable, "type": "yes_no", "text": f"{variable}?", **extra}


def number(variable: str, low: float = 0, high: float = 1000, **extra: Any) -> dict[str, Any]:
    return {
        "variable": variable,
        "type": "number",
        "min": low,
        "max": high,
        "text": f"{variable}?",
        **extra,
    }


def integer(variable: str, low: int = 0, high: int = 120, **extra: Any) -> dict[str, Any]:
    return {**number(variable, low, high, **extra), "type": "int"}


def choice(variable: str, choices: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "variable": variable,
        "type": "choice",
        "choices": choices,
        "text": f"{variable}?",
        **extra,
    }


def a_date(variable: str, **extra: Any) -> dict[str, Any]:
    return {"variable": variable, "type": "date", "text": f"{variable}?", **extra}


def date_or_none(variable: str, **extra: Any) -> dict[str, Any]:
    return {"variable": variable, "type": "date_or_none", "text": f"{variable}?", **extra}


def text(variable: str, **extra: Any) -> dict[str, Any]:
    return {"variable": variable, "type": "text", "text": f"{variable}?", **extra}


def cockcroft_gault(name: str, unit: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "label": "kidney function",
        "unit": unit,
        "calculator": "cockcroft_gault",
        "inputs": {
            "age": "age",
            "sex": "sex",
            "weight_kg": "weight_kg",
            "serum_creatinine_mg_dl": "serum_creatinine_mg_dl",
        },
        **extra,
    }


def criterion(cid: str, kind: str, rule: str, **extra: Any) -> dict[str, Any]:
    field = "met_when" if kind == "inclusion" else "applies_when"
    return {
        "id": cid,
        "kind": kind,
        "label": f"label of {cid}",
        "source": f"source of {cid}",
        field: rule,
        **extra,
    }


def inclusion(cid: str, rule: str, **extra: Any) -> dict[str, Any]:
    return criterion(cid, "inclusion", rule, **extra)


def exclusion(cid: str, rule: str, **extra: Any) -> dict[str, Any]:
    return criterion(cid, "exclusion", rule, **extra)


def dialog(
    questions: list[dict[str, Any]], criteria: list[dict[str, Any]], **top: Any
) -> dict[str, Any]:
    return {
        "id": top.pop("id", "synthetic"),
        "title": "A synthetic protocol",
        "version": "1",
        **top,
        "questions": questions,
        "criteria": criteria,
    }


def dump(data: dict[str, Any]) -> str:
    yaml = YAML(typ="rt")  # keeps the keys in the order written
    yaml.default_flow_style = False
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # one rule, one line: line numbers in the tests stay predictable
    stream = io.StringIO()
    yaml.dump(data, stream)
    return stream.getvalue()


def write(directory: Path, data: dict[str, Any] | str, name: str = "dialog.yaml") -> Path:
    path = directory / name
    path.write_text(data if isinstance(data, str) else dump(data), encoding="utf-8")
    return path


def build(directory: Path, data: dict[str, Any] | str, name: str = "dialog.yaml") -> Protocol:
    return load(write(directory, data, name))


def problems(
    directory: Path, data: dict[str, Any] | str, name: str = "dialog.yaml"
) -> list[Problem]:
    """The problems of a dialog that must not load; each has the file and a fix."""
    path = write(directory, data, name)
    with pytest.raises(DialogFileError) as info:
        load(path)
    found = info.value.problems
    assert found
    for problem in found:
        assert problem.file == str(path)
        assert problem.fix, f"no fix for {problem}"
    return found


def line_of(source: str, marker: str, occurrence: int = 0) -> int:
    lines = [n for n, line in enumerate(source.splitlines(), start=1) if marker in line]
    assert len(lines) > occurrence, f"{marker!r} not in the source"
    return lines[occurrence]


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    """``screen-bot validate PATH…`` as a user runs it."""
    return subprocess.run(
        [str(Path(sys.executable).parent / "screen-bot"), "validate", *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=60,
    )
